"""Tests of tools/gpu_smoke.py (``make gpu-smoke``) without a GPU: its skip path, and its checks
run on the CPU, where every comparison with the CPU reference must be exact."""

import numpy as np
import pytest
import torch

from tools import gpu_smoke


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_skips_without_cuda(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_smoke.main([]) == 0
    assert capsys.readouterr().out.startswith("no CUDA device: skipped")


def test_every_check_passes_on_the_cpu(one_thread):
    """On the CPU the device run IS a CPU run: every comparison must be exact."""
    rows = gpu_smoke.run_checks(torch.device("cpu"))
    table = gpu_smoke.format_rows(rows, torch.device("cpu"))
    assert all(r.ok for r in rows), table
    assert {r.check for r in rows} == {c.name for c in gpu_smoke.CHECKS}
    assert all(r.versus_cpu == "exact" for r in rows if r.generator != "device"), table
    assert table.splitlines()[-1] == f"{len(rows)} of {len(rows)} passed"


def test_failures_are_reported():
    def boom(device, generator):
        raise RuntimeError("no kernel for this device")

    checks = [
        gpu_smoke.Check("raises", boom),
        gpu_smoke.Check("infinite", lambda d, g: {"x": torch.tensor([1.0, float("inf")])}),
        gpu_smoke.Check("stream", lambda d, g: {"x": torch.rand(3, generator=g)},
                        uses_generator=True),
    ]
    rows = gpu_smoke.run_checks(torch.device("cpu"), checks)
    assert [r.ok for r in rows] == [False, False, False, False, True, True]
    table = gpu_smoke.format_rows(rows, torch.device("cpu"))
    assert "FAILED: RuntimeError: no kernel for this device" in table
    assert table.splitlines()[-1].startswith("2 of 6 passed: raises [cpu]")


def test_compare_with_the_cpu_run():
    same = {"i": torch.tensor([1, 2]), "x": np.array([1.0, 2.0])}
    assert gpu_smoke._compare(same, same, 1e-5, 1e-6) == "exact"
    close = {"i": torch.tensor([1, 2]), "x": np.array([1.0, 2.0 + 1e-9])}
    assert gpu_smoke._compare(close, same, 1e-5, 1e-6).startswith("max rel. diff 5")
    flipped = {"i": torch.tensor([1, 3]), "x": np.array([1.0, 2.0])}
    assert gpu_smoke._compare(flipped, same, 1e-5, 1e-6) == "DIFFERENT: i (1 of 2 entries)"
    far = {"i": torch.tensor([1, 2]), "x": np.array([1.0, 2.1])}
    assert gpu_smoke._compare(far, same, 1e-5, 1e-6).startswith("DIFFERENT: x (by 0.1")


def test_outputs_off_the_device_are_caught():
    on_device, finite = gpu_smoke._check_outputs({"x": torch.zeros(2)}, torch.device("meta"))
    assert not on_device and finite
