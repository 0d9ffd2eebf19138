"""lib.training: the weight grid that makes training runs the same on every CPU."""

import subprocess
import sys

import pytest
import torch

from lib.training import GRID_SPACING, snap_


def test_snap_rounds_to_the_nearest_multiple_ties_to_even():
    w = torch.tensor([0.1, -1 / 3, 0.5 * 2**-4, 1.5 * 2**-4, 1e-9, 7.0], dtype=torch.float64)
    snap_([w], 2.0**-4)
    assert w.tolist() == [0.125, -0.3125, 0.0, 0.125, 0.0, 7.0]


def test_snap_is_idempotent_and_moves_by_at_most_half_a_spacing():
    w = torch.randn(10_000, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    before = w.clone()
    snap_([w])
    assert (w - before).abs().max() <= GRID_SPACING / 2
    again = w.clone()
    snap_([again])
    assert torch.equal(again, w)
    assert torch.equal(torch.round(w / GRID_SPACING), w / GRID_SPACING)  # exactly on the grid


def test_snap_absorbs_rounding_level_differences():
    # two machines' weights differing in the last bit land on the same grid point (unless they
    # straddle a midpoint, probability ~1e-11 each); here none of 100,000 pairs does
    w = torch.rand(100_000, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    other = torch.nextafter(w, torch.full_like(w, 2.0))
    snap_([w, other])
    assert torch.equal(w, other)


def test_snap_rejects_bad_arguments():
    with pytest.raises(ValueError, match="spacing must be a power of two"):
        snap_([torch.zeros(2)], 0.1)
    with pytest.raises(ValueError, match="spacing"):
        snap_([torch.zeros(2)], -2.0**-4)
    with pytest.raises(TypeError, match=r"tensors\[1\] must be a floating-point"):
        snap_([torch.zeros(2), torch.zeros(2, dtype=torch.int64)])


_RUN = """
import sys, torch
torch.set_default_dtype(torch.float64)
from lib.bottleneck import train_autoencoder
run = train_autoencoder(["gumbel_softmax", "st_gumbel_softmax"], [0.1, 0.5], n_steps=120,
                        seed=0)
weights = torch.cat([p.detach().flatten() for p in run.model.parameters()])
print(weights.numpy().tobytes().hex())
print(" ".join(repr(x) for x in run.train_loss.flatten().tolist()))
"""


@pytest.mark.slow
def test_a_chaotic_training_run_is_the_same_under_other_cpu_kernels():
    # gumbel_softmax at tau = 0.1 amplifies a 1e-16 difference to 1e-3 within 100 steps
    # without the grid (lib/training.py); with it, PyTorch's portable kernels give the same
    # weights bit for bit, and losses that differ only by the rounding of the loss itself
    import os
    outs = []
    for env in ({}, {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"}):
        done = subprocess.run([sys.executable, "-c", _RUN], capture_output=True, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": "1", **env}, check=True)
        outs.append(done.stdout.split("\n"))
    assert outs[0][0] == outs[1][0]  # final weights, bit for bit
    losses = [torch.tensor([float(x) for x in out[1].split()]) for out in outs]
    assert (losses[0] - losses[1]).abs().max() < 1e-12


def test_fit_steps_snaps_evaluates_and_reports():
    """The one training loop: evaluations at 0, on schedule and at the end; weights on grid."""
    from lib.training import GRID_SPACING, fit

    w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([w], lr=0.05)
    seen, losses = [], []

    def loss(step):
        value = ((w - torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)) ** 2).sum()
        losses.append(float(value))
        return value

    def evaluate(step):
        seen.append(step)
        return f"w0 {float(w[0]):.2f}"

    out = fit(opt, loss, 25, evaluate=evaluate, eval_at=lambda s: s % 10 == 0, progress=False)
    assert out.steps == 25 and out.seconds > 0
    assert seen == [0, 10, 20, 25] and len(losses) == 25 and losses[-1] < losses[0]
    assert torch.equal(w.detach(), torch.round(w.detach() / GRID_SPACING) * GRID_SPACING)


def test_fit_bad_input():
    from lib.training import fit

    w = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.1)
    with pytest.raises(TypeError, match="optimizer must be a torch.optim.Optimizer"):
        fit([w], lambda s: w.sum(), 3)
    with pytest.raises(ValueError, match="n_steps must be"):
        fit(opt, lambda s: w.sum(), 0)
    with pytest.raises(ValueError, match=r"loss\(step\) must return a scalar tensor, got \(1,\)"):
        fit(opt, lambda s: w * 2, 3, progress=False)


def test_fit_advances_the_bar_at_evaluations_only_when_asked(capsys):
    """advance="evaluation": the count shown always goes with the evaluation beside it."""
    from lib.training import fit

    w = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.1)
    fit(opt, lambda s: ((w - 1) ** 2).sum(), 7, evaluate=lambda s: f"at {s}",
        eval_at=lambda s: s % 3 == 0, desc="run", advance="evaluation")
    parts = capsys.readouterr().out.split("\r")
    shown = [part.rsplit("| ", 1)[1] for part in parts if "| " in part]
    assert {s.split(",")[0] for s in shown} == {"0/7", "3/7", "6/7", "7/7"}
    assert all(s.startswith(f"{s.split('/')[0]}/7, at {s.split('/')[0]}") for s in shown[1:])
    with pytest.raises(ValueError, match="advance must be 'tick' or 'evaluation'"):
        fit(opt, lambda s: w.sum(), 2, advance="epoch")


def test_fit_takes_a_duck_typed_optimiser():
    """Any object with param_groups, zero_grad and step (the autoencoder's element-wise Adam)."""
    from lib.bottleneck import _Adam
    from lib.training import fit

    w = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    out = fit(_Adam([w], lr=0.1), lambda s: ((w - 1) ** 2).sum(), 100, progress=False)
    assert out.steps == 100 and torch.allclose(w.detach(), torch.ones(2, dtype=torch.float64),
                                               atol=0.05)
