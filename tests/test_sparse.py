"""Sparsemax, 1.5-entmax and sparse marginalisation (lib.sparse) against independent oracles.

The oracles: the threshold tau of each mapping found by bisection on sum_k p_k(tau) = 1 (a
method that shares nothing with the sort-based algorithms), torch.autograd.gradcheck for the
custom backward passes, and the dense sum over all K outcomes for sparse_expected_cost.
"""

import pytest
import torch

from lib.sparse import entmax15, sparse_expected_cost, sparsemax
from tests._helpers import assert_close, gen


def _bisection(z, power, scale, iters=200):
    """p = [scale * z - tau]_+ ** power with tau found by bisection on sum p = 1 (last dim)."""
    x = scale * z
    lo = x.max(-1, keepdim=True).values - 1.0  # sum p >= 1 at tau = max - 1 (one term is 1)
    hi = x.max(-1, keepdim=True).values  # sum p = 0 at tau = max
    for _ in range(iters):
        mid = (lo + hi) / 2
        total = ((x - mid).clamp_min(0) ** power).sum(-1, keepdim=True)
        lo = torch.where(total >= 1, mid, lo)
        hi = torch.where(total >= 1, hi, mid)
    return ((x - (lo + hi) / 2).clamp_min(0) ** power)


def _scores(seed, shape=(50, 7), scale=2.0):
    return scale * torch.randn(shape, generator=gen(seed), dtype=torch.float64)


@pytest.mark.parametrize("scale", [0.1, 1.0, 5.0])
def test_sparsemax_is_the_projection_found_by_bisection(scale):
    z = _scores(0, scale=scale)
    p = sparsemax(z)
    assert_close(p, _bisection(z, 1, 1.0), atol=1e-12, rtol=0)
    assert bool((p >= 0).all())
    assert_close(p.sum(-1), torch.ones(50, dtype=torch.float64), atol=1e-12, rtol=0)


def test_sparsemax_is_the_projection_found_by_a_qp_solver():
    scipy_optimize = pytest.importorskip("scipy.optimize")
    import numpy as np

    z = _scores(1, shape=(6,)).numpy()
    res = scipy_optimize.minimize(
        lambda p: ((p - z) ** 2).sum(), np.full(6, 1 / 6), jac=lambda p: 2 * (p - z),
        bounds=[(0, None)] * 6, constraints=[{"type": "eq", "fun": lambda p: p.sum() - 1}],
        method="SLSQP", options={"ftol": 1e-14, "maxiter": 500})
    assert res.success
    assert np.abs(sparsemax(torch.from_numpy(z)).numpy() - res.x).max() < 1e-6


def test_sparsemax_known_values_and_zeros():
    assert_close(sparsemax(torch.tensor([1.0, 0.8, -1.0])), torch.tensor([0.6, 0.4, 0.0]))
    # two categories: p_1 = clip((z_1 - z_2 + 1) / 2, 0, 1)
    d = torch.linspace(-2, 2, 41, dtype=torch.float64)
    z = torch.stack([d, torch.zeros_like(d)], -1)
    assert_close(sparsemax(z)[:, 0], ((d + 1) / 2).clamp(0, 1))
    p = sparsemax(torch.tensor([3.0, 0.0, 0.0]))
    assert torch.equal(p, torch.tensor([1.0, 0.0, 0.0]))  # exact zeros, not tiny numbers


@pytest.mark.parametrize("scale", [0.1, 1.0, 5.0])
def test_entmax15_matches_bisection_on_its_threshold(scale):
    z = _scores(2, scale=scale)
    p = entmax15(z)
    assert_close(p, _bisection(z, 2, 0.5), atol=1e-12, rtol=0)
    assert_close(p.sum(-1), torch.ones(50, dtype=torch.float64), atol=1e-12, rtol=0)


def test_entmax15_solves_its_variational_problem():
    # KKT: on the support, z_k + d/dp_k H^T_1.5(p) = z_k - 2 sqrt(p_k) is the same constant
    z = _scores(3, shape=(7,))
    p = entmax15(z)
    s = p > 0
    lagrange = (z - 2 * p.sqrt())[s]
    assert float(lagrange.max() - lagrange.min()) < 1e-12
    assert bool((z[~s] <= lagrange[0] + 1e-12).all())  # and no excluded k would enter


def test_mappings_are_shift_invariant_and_respect_dim():
    z = _scores(4, shape=(3, 5, 4))
    for f in (sparsemax, entmax15):
        assert_close(f(z + 3.0), f(z), atol=1e-12, rtol=0)
        assert_close(f(z, dim=1), f(z.transpose(1, 2)).transpose(1, 2))
        assert_close(f(z.float()), f(z).float(), atol=1e-6, rtol=0)


# Reference outputs of the `entmax` package (PyPI entmax 1.3, `entmax.entmax15` and
# `entmax.sparsemax` with dim=-1, torch 2.13.0) on these scores, float64 (rows: the scores,
# sparsemax, 1.5-entmax), stored so that the tests do not depend on the package (computed once
# in a separate virtual environment).
ENTMAX_PACKAGE_REFERENCE = (
    [
        [1.8195150644223592, 0.3075143762472238, 2.5968403623536833,
         -1.2640517831866762, -1.5072819078673463, 0.19476921007556433],
        [-2.066874710407026, 0.3640485457776438, -2.14901035612976,
         1.9043734588161638, -0.9687598252620242, 0.13468096685783545],
        [0.3, 0.3, -0.2,
         1.1, -2.0, 0.9],
    ],
    [
        [0.11133735103433795, 0.0, 0.888662648965662,
         0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0,
         1.0, 0.0, 0.0],
        [0.0, 0.0, 0.0,
         0.6000000000000001, 0.0, 0.4],
    ],
    [
        [0.23575646070247366, 0.0, 0.7642435392975262,
         0.0, 0.0, 0.0],
        [0.0, 0.04184376302312724, 0.0,
         0.9500789565501947, 0.0, 0.008077280426677907],
        [0.08501637749797994, 0.08501637749797994, 0.0017285372145907864,
         0.4782769219514026, 0.0, 0.3499617858380468],
    ],
)


def test_agrees_with_the_entmax_package_reference():
    if ENTMAX_PACKAGE_REFERENCE is None:
        pytest.skip("no stored reference from the entmax package")
    z, ref_sparsemax, ref_entmax15 = (torch.tensor(v, dtype=torch.float64)
                                      for v in ENTMAX_PACKAGE_REFERENCE)
    assert_close(sparsemax(z), ref_sparsemax, atol=1e-12, rtol=0)
    assert_close(entmax15(z), ref_entmax15, atol=1e-12, rtol=0)


@pytest.mark.parametrize("f", [sparsemax, entmax15])
def test_backward_passes_pass_gradcheck(f):
    # scores with distinct sorted gaps away from the support's kinks (gradcheck's finite
    # differences need a locally constant support)
    z = _scores(5, shape=(4, 6)).requires_grad_(True)
    assert torch.autograd.gradcheck(f, (z,), eps=1e-6, atol=1e-7)
    assert torch.autograd.gradcheck(lambda t: f(t, dim=0), (z,), eps=1e-6, atol=1e-7)
    p = f(z.detach())
    assert bool((p == 0).any()) and bool((p > 0).sum(-1).gt(1).any())  # both cases exercised


def test_sparsemax_jacobian_formula():
    z = torch.tensor([1.0, 0.8, 0.5, -1.0], dtype=torch.float64)
    s = (sparsemax(z) > 0).to(z.dtype)
    exact = torch.diag(s) - torch.outer(s, s) / s.sum()
    assert_close(torch.func.jacrev(sparsemax)(z), exact)


@pytest.mark.parametrize("mapping, f", [("sparsemax", sparsemax), ("entmax15", entmax15)])
def test_sparse_expected_cost_equals_the_dense_sum(mapping, f):
    k = 8
    logits = _scores(6, shape=(5, k)).requires_grad_(True)
    target = torch.randn(5, k, generator=gen(7), dtype=torch.float64).requires_grad_(True)
    calls = []

    def cost(z):  # [M, 5, K] -> [M, 5], with its own parameters
        calls.append(z.shape[0])
        return ((z - target.softmax(-1)) ** 2).sum(-1) + (z * target).sum(-1)

    out = sparse_expected_cost(logits, cost, mapping)
    dense = (f(logits) * cost(torch.eye(k, dtype=torch.float64).unsqueeze(1)
                              .expand(k, 5, k)).transpose(0, 1)).sum(-1)
    assert_close(out.value, dense)
    g_sparse = torch.autograd.grad(out.value.sum(), (logits, target))
    g_dense = torch.autograd.grad(dense.sum(), (logits, target))
    for a, b in zip(g_sparse, g_dense):
        assert_close(a, b)
    assert calls[0] == out.n_evaluations == int(out.support_size.max()) < k
    assert torch.equal(out.support_size, (f(logits) > 0).sum(-1))


def test_sparse_expected_cost_single_row():
    logits = torch.tensor([2.0, 1.9, -1.0, -3.0])
    out = sparse_expected_cost(logits, lambda z: (z * torch.arange(4.0)).sum(-1))
    assert_close(out.value, torch.tensor(0.45))
    assert out.n_evaluations == 2 and out.support_size.shape == ()


@pytest.mark.parametrize("call, error, match", [
    (lambda: sparsemax([1.0, 2.0]), TypeError, "z must be"),
    (lambda: entmax15(torch.tensor([1, 2])), TypeError, "z must be a floating"),
    (lambda: sparsemax(torch.tensor([0.0, float("inf")])), ValueError, "z must be finite"),
    (lambda: entmax15(torch.zeros(3), dim=2), ValueError, "dim"),
    (lambda: sparse_expected_cost(torch.zeros(3), 1), TypeError, "cost must be a callable"),
    (lambda: sparse_expected_cost(torch.zeros(3), lambda z: z.sum(-1), "softmax"), ValueError,
     "mapping must be one of"),
    (lambda: sparse_expected_cost(torch.zeros(3), lambda z: z, "sparsemax"), ValueError,
     "cost must map"),
    (lambda: sparse_expected_cost(torch.tensor(1.0), lambda z: z), ValueError, "logits"),
])
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    z = _scores(8, shape=(5, 8))
    for f in (sparsemax, entmax15):
        zc = z.cuda().requires_grad_(True)
        p = f(zc)
        assert p.device == zc.device
        (p * torch.arange(8.0, dtype=z.dtype, device=zc.device)).sum().backward()
        assert zc.grad.device == zc.device
        assert_close(p.cpu(), f(z), atol=1e-12, rtol=0)
    out = sparse_expected_cost(z.cuda(), lambda o: o[..., 0])
    assert out.value.device == z.cuda().device
