"""The references of the unbiased_estimators exercise set are right: its DisARM and ARM formulas
(written from the papers) agree with the registry's `disarm` and `arm` on the same uniforms,
their means match the exact gradient by enumeration within the z-test's threshold on the set's
own draw, and q2's closed-form variances match an integral over u of the same formulas."""

import math

import numpy as np
import pytest
import torch

from lib.estimators import StochasticNode, surrogate
from lib.grading.sets import unbiased_estimators as S


@pytest.mark.parametrize("k", range(len(S.Q1_PROBLEMS)))
@pytest.mark.parametrize("name", ["disarm", "arm"])
def test_references_agree_with_the_registry_on_the_same_uniforms(k, name):
    _, logits, cost, u = S.Q1_PROBLEMS[k]
    p, d = u.shape
    lt = torch.tensor(logits).expand(p, d).clone().requires_grad_(True)
    # a batch of P nodes, one pair each: the gradient of the loss per element is that pair's
    node = StochasticNode("bernoulli", lt, event_dims=1,
                          fixed_uniforms=torch.tensor(u).unsqueeze(0))
    out = surrogate(name, node, lambda z: torch.as_tensor(cost(z.numpy())), 1)
    (grad,) = torch.autograd.grad(out.loss.sum(), lt)
    ref = S.disarm_reference if name == "disarm" else S.arm_reference
    np.testing.assert_allclose(grad.numpy(), ref(logits, cost, u), rtol=1e-12, atol=1e-14)


def test_the_reference_passes_the_statistical_checks_on_the_sets_draw():
    _, logits, cost, u = S.Q1_PROBLEMS[S.Q1_STATS]
    g = S.disarm_reference(logits, cost, u)
    exact = S.exact_gradient_reference(logits, cost)
    z = S._z_scores(g, exact)
    assert np.all(np.abs(z) < 3), z  # well inside the threshold S.Q1_Z = 5
    S._statistics(g, logits, cost, u, "check")  # raises a Mistake if not
    # and the checks have power: DisARM without its weight sigma(|l|) is far outside
    assert np.abs(S._z_scores(g / S._sigmoid(np.abs(logits)), exact)).max() > 10 * S.Q1_Z


def test_exact_gradient_by_enumeration_matches_autograd():
    _, logits, cost, _ = S.Q1_PROBLEMS[S.Q1_STATS]
    lt = torch.tensor(logits, requires_grad=True)
    theta = torch.sigmoid(lt)
    total = 0
    for bits in range(2 ** len(logits)):
        b = np.array([(bits >> i) & 1 for i in range(len(logits))], dtype=float)
        bt = torch.tensor(b)
        prob = torch.prod(torch.where(bt > 0, theta, 1 - theta))
        total = total + prob * float(cost(b))
    (grad,) = torch.autograd.grad(total, lt)
    np.testing.assert_allclose(S.exact_gradient_reference(logits, cost), grad.numpy(),
                               rtol=1e-12)


@pytest.mark.parametrize("point", S.Q2_POINTS)
def test_closed_form_variances_match_the_integral_over_u(point):
    logit, f0, f1 = point
    n = 400_000  # midpoint rule: exact on each piece but the two containing a threshold
    u = ((np.arange(n) + 0.5) / n)[:, None]

    def cost(z):
        return np.where(z[..., 0] > 0, f1, f0)

    arm = S.arm_reference(np.array([logit]), cost, u)[:, 0]
    dis = S.disarm_reference(np.array([logit]), cost, u)[:, 0]
    want_arm, want_dis = S.pair_variances_reference(logit, f0, f1)
    tol = 10 * (f1 - f0) ** 2 / n + 1e-15  # one grid cell of the discontinuities
    assert math.isclose(arm.var(), want_arm, abs_tol=tol)
    assert math.isclose(dis.var(), want_dis, abs_tol=tol)
    assert want_dis <= want_arm + 1e-15
