"""Strict nbval of every chapter and solution under several CPU code paths, on one machine.

    python -m tools.nbval_matrix                  # every variant this CPU offers
    python -m tools.nbval_matrix --only portable  # one variant, as make test runs it

The committed outputs must not depend on the CPU that executed them. A reader's laptop, Colab
and CI differ from the machine that wrote them: PyTorch dispatches other vectorised kernels
(``torch.backends.cpu.get_cpu_capability()``), MKL and OpenBLAS take other code paths, and
NumPy's SIMD loops differ. Each variant below forces one of these choices through environment
variables read at start-up, so one machine stands in for several:

- ``native``: what this CPU picks by itself;
- ``default`` / ``avx2`` / ``avx512``: ``ATEN_CPU_CAPABILITY``, PyTorch's kernels (a level this
  CPU lacks is skipped);
- ``mkl-compatible``: ``MKL_CBWR=COMPATIBLE``, MKL's portable path (PyTorch's matrix products);
- ``portable``: all of the oldest paths at once: PyTorch's ``default`` kernels, MKL's portable
  path, OpenBLAS's Haswell kernels and NumPy without its AVX2/AVX-512 loops.

Every variant compares against the same committed outputs; nothing is re-saved. The exit status
is 0 only when every variant passes. ``OMP_NUM_THREADS=1`` as in ``make nbval``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# NumPy's dispatchable features above the x86-64 baseline it may use on this machine.
_NUMPY_HIGH = ("AVX512_SPR AVX512_ICL X86_V4 AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL "
               "X86_V3 AVX2 FMA3 F16C")


def cpu_flags() -> set[str]:
    """The instruction-set flags of the first CPU in /proc/cpuinfo (empty where unreadable)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    match = re.search(r"^flags\s*:\s*(.*)$", text, re.M)
    return set(match.group(1).split()) if match else set()


def variants(flags: set[str]) -> dict[str, dict[str, str]]:
    """Name -> environment overrides, for the variants this CPU can run."""
    out: dict[str, dict[str, str]] = {"native": {}, "default": {"ATEN_CPU_CAPABILITY": "default"}}
    if "avx2" in flags:
        out["avx2"] = {"ATEN_CPU_CAPABILITY": "avx2"}
    if "avx512f" in flags:
        out["avx512"] = {"ATEN_CPU_CAPABILITY": "avx512"}
    out["mkl-compatible"] = {"MKL_CBWR": "COMPATIBLE"}
    out["portable"] = {
        "ATEN_CPU_CAPABILITY": "default",
        "MKL_CBWR": "COMPATIBLE",
        "OPENBLAS_CORETYPE": "Haswell",
        "NPY_DISABLE_CPU_FEATURES": _NUMPY_HIGH,
    }
    return out


def _probe(env: dict[str, str]) -> str:
    """PyTorch's kernel level as a child with ``env`` reports it (proves the override took)."""
    code = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    return done.stdout.strip() or f"error: {done.stderr.strip().splitlines()[-1:]}"


def run(name: str, overrides: dict[str, str], paths: list[str], workers: int) -> tuple[bool, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", **overrides}
    if "NPY_DISABLE_CPU_FEATURES" in overrides:
        # NumPy refuses to start if asked to disable a feature this CPU does not have
        env["NPY_DISABLE_CPU_FEATURES"] = " ".join(
            f for f in overrides["NPY_DISABLE_CPU_FEATURES"].split() if _numpy_has(f))
    capability = _probe(env)
    cmd = [sys.executable, "-m", "pytest", "--nbval", *paths, "--nbval-current-env",
           "--nbval-sanitize-with", "tests/nbval_sanitize.cfg", "--ignore=_build", "-q",
           "-p", "no:cacheprovider"]
    if workers > 1:
        cmd += ["-n", str(workers), "--dist", "loadfile"]
    shown = " ".join(f"{k}={env[k]}" for k in overrides) or "(no overrides)"
    print(f"== {name}: {shown}"
          f" -> PyTorch kernels {capability}", flush=True)
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    summary = (done.stdout.strip().splitlines() or ["(no output)"])[-1]
    if done.returncode != 0:
        failed = [line for line in done.stdout.splitlines() if line.startswith("FAILED")]
        print("\n".join(failed[:40]) or done.stdout[-3000:] + done.stderr[-2000:], flush=True)
    return done.returncode == 0, f"| {name} | {capability} | {summary} | {seconds:.0f} s |"


_NUMPY_FEATURES: set[str] | None = None


def _numpy_has(feature: str) -> bool:
    global _NUMPY_FEATURES
    if _NUMPY_FEATURES is None:
        code = ("import numpy._core._multiarray_umath as m; "
                "print(' '.join(k for k, v in m.__cpu_features__.items() if v))")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        _NUMPY_FEATURES = set(done.stdout.split())
    return feature in _NUMPY_FEATURES


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", help="run only this variant (repeatable)")
    ap.add_argument("--workers", type=int, default=2, help="pytest-xdist workers (default 2)")
    ap.add_argument("paths", nargs="*", default=["chapters", "solutions"])
    args = ap.parse_args(argv)
    table = variants(cpu_flags())
    names = args.only or list(table)
    unknown = [n for n in names if n not in table]
    if unknown:
        ap.error(f"unknown or unsupported variant(s) {unknown}; this CPU offers {list(table)}")
    rows, ok = [], True
    for name in names:
        passed, row = run(name, table[name], args.paths, args.workers)
        ok &= passed
        rows.append(row)
    print("\n| variant | PyTorch kernels | strict nbval | time |\n|---|---|---|---|")
    print("\n".join(rows))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
