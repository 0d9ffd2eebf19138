"""Measured error rates of the grader's checks (issue 14).

Every right and wrong case of tests/grading_cases/ is graded under many student-side seeds: the
case's cells run after seeding Python's, NumPy's and torch's global generators with the seed,
and every ``seed_all(k)`` a probe makes becomes ``seed_all(k + 7919 * seed)``, so the student's
random draws differ from run to run while the probe's inputs stay the same. The table gives, per
question, the false-rejection rate (right cases scored 0) and the false-acceptance rate (wrong
cases scored full), with exact (Clopper-Pearson) 95% intervals.

    python -m tools.grading_error_rates --seeds 1000 --out assets/grading_error_rates.md

Questions whose case takes longer than ``--max-seconds`` per run are listed as not measured.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import linecache
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from scipy import stats

from lib.grading import get_set, list_sets, probing, run_question

ROOT = Path(__file__).resolve().parents[1]
STRIDE = 7919


def cases_of(name: str):
    try:
        return importlib.import_module(f"tests.grading_cases.{name}")
    except ModuleNotFoundError:
        return None


def interval(k: int, n: int) -> Tuple[float, float]:
    """Exact two-sided 95% binomial interval for k successes in n trials."""
    lo = 0.0 if k == 0 else float(stats.beta.ppf(0.025, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(0.975, k + 1, n - k))
    return lo, hi


@contextlib.contextmanager
def shifted_seeds(set_module, shift: int):
    """Every seed_all(k) of the set's probes seeds k + shift instead."""
    real = probing.seed_all
    old = getattr(set_module, "seed_all", None)
    if old is not None:
        set_module.seed_all = lambda k: real(int(k) + shift)
    try:
        yield
    finally:
        if old is not None:
            set_module.seed_all = old


def run_case(name: str, question: str, source: str, preamble: str, seed: int) -> bool:
    """Whether the case scores full points under student-side seed ``seed``."""
    set_module = importlib.import_module(f"lib.grading.sets.{name}")
    probing.seed_all(10_000 + seed)
    namespace: Dict[str, object] = {"__name__": "__main__"}
    code = preamble + source
    filename = f"<rates-{name}-{question}-{abs(hash(source))}-{seed}>"
    linecache.cache[filename] = (len(code), None, code.splitlines(keepends=True), filename)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            exec(compile(code, filename, "exec"), namespace)
        except Exception:  # noqa: BLE001 - a case that fails to run scores 0
            linecache.cache.pop(filename, None)
            return False
        with shifted_seeds(set_module, STRIDE * seed):
            result = run_question(get_set(name).questions[question], namespace)
    linecache.cache.pop(filename, None)
    return result.passed


def _cases(name: str, question: str) -> List[Tuple[bool, str]]:
    spec = cases_of(name).CASES[question]
    return [(True, src) for src in spec.get("right", [])] + [
        (False, src) for src, _ in spec.get("wrong", [])]


def measure_question(name: str, question: str, seeds: int, max_seconds: float,
                     budget: float = float("inf"), min_seeds: int = 100) -> dict:
    """Grade every case of one question under ``n`` seeds and count the wrong verdicts.

    ``n`` is ``seeds``, or fewer where ``n`` runs of all the question's cases would take more
    than ``budget`` seconds (never fewer than ``min_seeds``); the row records the ``n`` used.
    """
    preamble = getattr(cases_of(name), "PREAMBLE", "")
    row = {"set": name, "question": question, "seeds": seeds, "right_n": 0, "rejected": 0,
           "wrong_n": 0, "accepted": 0, "skipped": []}
    cases = _cases(name, question)
    kept, first, per_seed = [], [], 0.0
    for i, (right, src) in enumerate(cases):
        took = 0.0
        for _ in range(2):  # the second run is timed (the first may import and warm up)
            start = time.monotonic()
            passed = run_case(name, question, src, preamble, 0)
            took = time.monotonic() - start
            if took <= max_seconds:
                break
        if took > max_seconds:
            row["skipped"].append(f"{'right' if right else 'wrong'} case {i} "
                                  f"({took:.1f} s/run)")
            continue
        kept.append((right, src))
        first.append(passed)
        per_seed += took
    if per_seed * seeds > budget:
        row["seeds"] = min(seeds, max(min_seeds, int(budget / per_seed)))
    for (right, src), passed in zip(kept, first):
        outcomes = [passed] + [run_case(name, question, src, preamble, s)
                               for s in range(1, row["seeds"])]
        if right:
            row["right_n"] += row["seeds"]
            row["rejected"] += outcomes.count(False)
        else:
            row["wrong_n"] += row["seeds"]
            row["accepted"] += outcomes.count(True)
    return row


def _measure_one(args) -> dict:
    return measure_question(*args)


def measure(seeds: int, max_seconds: float, sets: Optional[Sequence[str]] = None,
            log=print, jobs: int = 1, budget: float = float("inf")) -> List[dict]:
    """One row per question of ``sets`` (default all); ``jobs`` questions run at a time."""
    units = [(name, q, seeds, max_seconds, budget) for name in sets or list_sets()
             if cases_of(name) is not None for q in cases_of(name).CASES]
    rows = {}

    def record(row):
        rows[row["set"], row["question"]] = row
        log(f"{row['set']}.{row['question']} ({row['seeds']} seeds): rejected "
            f"{row['rejected']}/{row['right_n']}, accepted {row['accepted']}/{row['wrong_n']}"
            + (f", skipped {len(row['skipped'])}" if row["skipped"] else ""))

    if jobs <= 1:
        for unit in units:
            record(_measure_one(unit))
    else:
        import multiprocessing

        # Each question in its own fresh process (spawn): no state of one question's cases
        # (patched modules, global seeds, threads) reaches another's.
        with multiprocessing.get_context("spawn").Pool(jobs, maxtasksperchild=1) as pool:
            for row in pool.imap_unordered(_measure_one, units):
                record(row)
    return [rows[u[0], u[1]] for u in units]


def _commit() -> str:
    import subprocess

    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                          capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def table(rows: List[dict], seeds: int, max_seconds: float) -> str:
    def rate(k, n):
        if n == 0:
            return "not measured"
        lo, hi = interval(k, n)
        return f"{k}/{n} = {k / n:.2g} [{lo:.2g}, {hi:.2g}]"

    lines = [
        "# Measured error rates of the grader's checks",
        "",
        f"Generated by `make grading-error-rates` at commit {_commit()} with "
        f"**{seeds} student-side seeds** per case "
        "(tools/grading_error_rates.py), or fewer where a question's cases are slow (the seeds "
        "column gives the number used). Each right and wrong case of tests/grading_cases/ is "
        "graded once per seed: its cells run after seeding the global generators with the "
        "seed, and each probe's seed_all(k) becomes seed_all(k + 7919 seed). False rejection: "
        "right cases scored 0; false acceptance: wrong cases scored full. Intervals: exact "
        "95% (Clopper-Pearson). Target: false rejection <= 1e-3 per question, false "
        "acceptance 0.",
        "",
        f"Cases slower than {max_seconds:g} s per run are not measured (listed).",
        "",
        "| set | question | seeds | false rejection | false acceptance | not measured |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['set']} | {r['question']} | {r['seeds']} | "
                     f"{rate(r['rejected'], r['right_n'])} | "
                     f"{rate(r['accepted'], r['wrong_n'])} | {'; '.join(r['skipped'])} |")
    worst_fr = max((r["rejected"] / r["right_n"] for r in rows if r["right_n"]), default=0.0)
    worst_fa = max((r["accepted"] / r["wrong_n"] for r in rows if r["wrong_n"]), default=0.0)
    lines += ["", f"Worst false rejection: {worst_fr:.2g}. Worst false acceptance: "
              f"{worst_fa:.2g}.", ""]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1000)
    parser.add_argument("--max-seconds", type=float, default=2.0)
    parser.add_argument("--set", action="append", dest="sets")
    parser.add_argument("--jobs", type=int, default=1, help="questions measured at a time")
    parser.add_argument("--budget", type=float, default=float("inf"),
                        help="seconds of runs per question; slower questions get fewer seeds "
                        "(at least 100)")
    parser.add_argument("--out", default=str(ROOT / "assets" / "grading_error_rates.md"))
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    rows = measure(args.seeds, args.max_seconds, args.sets, jobs=args.jobs,
                   budget=args.budget)
    Path(args.out).write_text(table(rows, args.seeds, args.max_seconds))
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
