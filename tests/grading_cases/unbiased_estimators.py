PREAMBLE = "import math\nimport numpy as np\nimport torch\n"

# The chapter's convention (lib's): b = 1[u > sigma(-l)], b~ = 1[u < sigma(l)]; the paper's
# b = 1[u < sigma(l)] is the same pair with its two samples swapped, which DisARM ignores.
_DISARM = (
    "def disarm(logits, cost, u):\n"
    "    l = logits.detach()\n"
    "    theta = torch.sigmoid(l)\n"
    "    b = (u > 1 - theta).double()\n"
    "    b_anti = (u < theta).double()\n"
    "    diff = (cost(b) - cost(b_anti)).unsqueeze(-1)\n"
    "    sign = 1 - 2 * b_anti\n"
    "    return 0.5 * diff * sign * (b != b_anti).double() * torch.sigmoid(l.abs())\n"
)


def _variant(return_line, head=""):
    """The DisARM template above with another return line (and extra lines before it)."""
    lines = _DISARM.splitlines(keepends=True)
    return "".join(lines[:-1]) + head + return_line


CASES = {
    "q1": {
        "right": [
            _DISARM,
            # the paper's labelling (b = 1[u < sigma(l)]), NumPy, a loop over the pairs with
            # one cost call per sample of shape [D]
            "def disarm(logits, cost, u):\n"
            "    l = logits.detach().numpy()\n"
            "    uu = np.asarray(u)\n"
            "    theta = 1 / (1 + np.exp(-l))\n"
            "    out = np.zeros(uu.shape)\n"
            "    for p in range(uu.shape[0]):\n"
            "        b = (uu[p] < theta).astype(float)\n"
            "        bt = (1 - uu[p] < theta).astype(float)\n"
            "        d = float(cost(b)) - float(cost(bt))\n"
            "        for i in range(len(l)):\n"
            "            if b[i] != bt[i]:\n"
            "                out[p, i] = 0.5 * d * (-1) ** bt[i] / (1 + math.exp(-abs(l[i])))\n"
            "    return out\n",
            # in float32, the sign written with torch.where, one call of the cost on both
            "def disarm(logits, cost, u):\n"
            "    l = logits.detach().float()\n"
            "    u = u.float()\n"
            "    theta = torch.sigmoid(l)\n"
            "    b, bt = (u < theta).float(), (1 - u < theta).float()\n"
            "    c = cost(torch.cat([b, bt])).float()\n"
            "    d = (c[: len(u)] - c[len(u):])[:, None]\n"
            "    w = torch.where(b > bt, 0.5, torch.where(b < bt, -0.5, 0.0))\n"
            "    return d * w * torch.sigmoid(l.abs())\n",
            # as ARM's conditional expectation: max(theta, 1 - theta) for sigma(|l|)
            "def disarm(logits, cost, u):\n"
            "    with torch.no_grad():\n"
            "        theta = torch.sigmoid(logits)\n"
            "        b = (u > 1 - theta).double()\n"
            "        bt = (u < theta).double()\n"
            "        d = (cost(b) - cost(bt))[:, None]\n"
            "        return d * (b - bt) / 2 * torch.maximum(theta, 1 - theta)\n",
        ],
        "wrong": [
            # ARM itself: unbiased, but not DisARM's values
            (_variant("    return (cost(b) - cost(b_anti)).unsqueeze(-1) * (u - 0.5)\n"),
             "ARM's estimates"),
            (_variant("    return (cost(b_anti) - cost(b)).unsqueeze(-1) * (u - 0.5)\n"),
             "sign flipped"),
            (_variant("    return diff * sign * (b != b_anti).double() * torch.sigmoid(l.abs())\n"),
             "twice"),
            (_variant("    return -0.5 * diff * sign * (b != b_anti).double() * "
                      "torch.sigmoid(l.abs())\n"), "wrong sign"),
            (_variant("    return 0.5 * diff * sign * (b != b_anti).double() * torch.sigmoid(l)\n"),
             "ABSOLUTE"),
            (_variant("    return 0.5 * diff * sign * torch.sigmoid(l.abs())\n"), "indicator"),
            (_variant("    return 0.5 * diff * sign * (b != b_anti).double() * "
                      "torch.sigmoid(l.abs()) / (theta * (1 - theta))\n"), "probabilities"),
            (_variant("    return 0.5 * diff * sign * (b != b_anti).double() * "
                      "torch.sigmoid(l.abs()) * theta * (1 - theta)\n"), "once too often"),
            # no antithesis: the second sample from uniforms of its own
            (_variant("    return 0.5 * diff * sign * (b != b_anti).double() * "
                      "torch.sigmoid(l.abs())\n",
                      "    b_anti = (torch.rand_like(u) < theta).double()\n"
                      "    diff = (cost(b) - cost(b_anti)).unsqueeze(-1)\n"
                      "    sign = 1 - 2 * b_anti\n"), "random numbers of its own"),
            # the same, but reseeded on every call (so the same output twice): biased
            (_variant("    return 0.5 * diff * sign * (b != b_anti).double() * "
                      "torch.sigmoid(l.abs())\n",
                      "    g = torch.Generator().manual_seed(0)\n"
                      "    b_anti = (torch.rand(u.shape, generator=g, dtype=u.dtype) < theta)"
                      ".double()\n"
                      "    diff = (cost(b) - cost(b_anti)).unsqueeze(-1)\n"
                      "    sign = 1 - 2 * b_anti\n"), "biased"),
            (_variant("    return 0.5 * diff * sign * (b != b_anti).double() * "
                      "torch.sigmoid(l.abs())\n",
                      "    b_anti = 1 - b\n"
                      "    diff = (cost(b) - cost(b_anti)).unsqueeze(-1)\n"
                      "    sign = 1 - 2 * b_anti\n"), "complement"),
            # the estimate still on the graph of the logits
            (_variant("    return 0.5 * diff * sign * (b != b_anti).double() * "
                      "torch.sigmoid(logits.abs())\n"), "autograd graph"),
            (_variant("    return (0.5 * diff * sign * (b != b_anti).double() * "
                      "torch.sigmoid(l.abs())).mean(0)\n"), "not their mean"),
            (_variant("    return (0.5 * diff * sign * (b != b_anti).double() * "
                      "torch.sigmoid(l.abs())).T\n"), "shape"),
            # the exact gradient by enumeration, on every row
            ("import itertools\n"
             "def disarm(logits, cost, u):\n"
             "    l = logits.detach()\n"
             "    theta = torch.sigmoid(l)\n"
             "    g = torch.zeros_like(l)\n"
             "    for bits in itertools.product([0.0, 1.0], repeat=len(l)):\n"
             "        b = torch.tensor(bits, dtype=torch.float64)\n"
             "        p = torch.prod(torch.where(b > 0, theta, 1 - theta))\n"
             "        g += p * float(cost(b)) * (b - theta)\n"
             "    return g.expand(u.shape).clone()\n", "exact gradient"),
            # REINFORCE with each sample's partner as baseline, averaged over the pair: biased,
            # because the two samples are dependent
            (_variant("    return 0.5 * diff * ((b - theta) - (b_anti - theta))\n"),
             "without the weight"),
            # the same estimator, but not row by row: unbiased, and not DisARM's values
            (_variant("    return 0.5 * diff.flip(0) * (sign * (b != b_anti).double()).flip(0) "
                      "* torch.sigmoid(l.abs())\n"), "differ from DisARM"),
            # hostile: the registry's own DisARM on the same uniforms
            ("from lib.estimators import StochasticNode, surrogate\n"
             "def disarm(logits, cost, u):\n"
             "    P, D = u.shape\n"
             "    l = logits.detach().expand(P, D).clone().requires_grad_(True)\n"
             "    node = StochasticNode('bernoulli', l, event_dims=1, fixed_uniforms=u[None])\n"
             "    out = surrogate('disarm', node, cost, 1)\n"
             "    return torch.autograd.grad(out.loss.sum(), l)[0]\n", "not allowed"),
            # hostile: the grader's own reference
            ("from lib.grading.sets import unbiased_estimators as _g\n"
             "def disarm(logits, cost, u):\n"
             "    f = lambda z: np.asarray(cost(z))\n"
             "    return _g.disarm_reference(logits.detach().numpy(), f, u.numpy())\n",
             "not allowed"),
            # hostile: right once per shape, then the cached answer (the second call on the
            # first problem is the one with logits that require grad: same values, passes that)
            ("class _Any(float):\n"
             "    def __eq__(self, other):\n        return True\n"
             "    __hash__ = float.__hash__\n"
             "def disarm(logits, cost, u):\n    return _Any(0.0)\n", "shape"),
            (_variant("    return diff * sign * 0 / 0\n"), "NaN"),
        ],
    },
    "q2": {
        "right": [
            # the closed form in s = sigma(|l|)
            "def pair_variances(logit, f0, f1):\n"
            "    s = 1 / (1 + math.exp(-abs(logit)))\n"
            "    d2 = (f1 - f0) ** 2\n"
            "    mean2 = d2 * (s * (1 - s)) ** 2\n"
            "    arm = d2 * 2 / 3 * (1 / 8 - (s - 0.5) ** 3) - mean2\n"
            "    dis = d2 * s * s * (1 - s) / 2 - mean2\n"
            "    return arm, dis\n",
            # numerical integration over u, split at the thresholds (scipy's quad)
            "from scipy.integrate import quad\n"
            "def pair_variances(logit, f0, f1):\n"
            "    t = 1 / (1 + math.exp(-logit))\n"
            "    f = {0: f0, 1: f1}\n"
            "    def arm(u):\n"
            "        b, bt = int(u < t), int(1 - u < t)\n"
            "        return (f[bt] - f[b]) * (u - 0.5)\n"
            "    def dis(u):\n"
            "        b, bt = int(u < t), int(1 - u < t)\n"
            "        s = 1 / (1 + math.exp(-abs(logit)))\n"
            "        return 0.5 * (f[b] - f[bt]) * (-1) ** bt * (b != bt) * s\n"
            "    cuts = sorted([t, 1 - t])\n"
            "    out = []\n"
            "    for g in (arm, dis):\n"
            "        m1 = sum(quad(g, a, c)[0] for a, c in zip([0] + cuts, cuts + [1]))\n"
            "        m2 = sum(quad(lambda u: g(u) ** 2, a, c, epsabs=1e-14, epsrel=1e-12)[0]\n"
            "                 for a, c in zip([0] + cuts, cuts + [1]))\n"
            "        out.append(m2 - m1 ** 2)\n"
            "    return torch.tensor(out)\n",
            # by cases on the sign of the logit, in theta = sigma(l), returned as a NumPy array
            "def pair_variances(logit, f0, f1):\n"
            "    th = 1 / (1 + np.exp(-logit))\n"
            "    q = min(th, 1 - th)  # the chance of each disagreeing case\n"
            "    d = f1 - f0\n"
            "    g = d * th * (1 - th)\n"
            "    arm2 = 2 * d * d * ((0.5) ** 3 - (0.5 - q) ** 3) / 3\n"
            "    dis2 = 2 * q * (0.5 * d * (1 - q)) ** 2\n"
            "    return np.array([arm2 - g * g, dis2 - g * g])\n",
        ],
        "wrong": [
            ("def pair_variances(logit, f0, f1):\n"
             "    s = 1 / (1 + math.exp(-abs(logit)))\n"
             "    d2 = (f1 - f0) ** 2\n"
             "    mean2 = d2 * (s * (1 - s)) ** 2\n"
             "    return d2 * s * s * (1 - s) / 2 - mean2, "
             "d2 * 2 / 3 * (1 / 8 - (s - 0.5) ** 3) - mean2\n", "other order"),
            ("def pair_variances(logit, f0, f1):\n"
             "    s = 1 / (1 + math.exp(-abs(logit)))\n"
             "    d2 = (f1 - f0) ** 2\n"
             "    return d2 * 2 / 3 * (1 / 8 - (s - 0.5) ** 3), d2 * s * s * (1 - s) / 2\n",
             "second moments"),
            ("def pair_variances(logit, f0, f1):\n"
             "    s = 1 / (1 + math.exp(-logit))\n"
             "    d2 = (f1 - f0) ** 2\n"
             "    mean2 = d2 * (s * (1 - s)) ** 2\n"
             "    return (d2 * 2 / 3 * (1 / 8 - (s - 0.5) ** 3) - mean2,\n"
             "            d2 * s * s * (1 - s) / 2 - mean2)\n", "negative"),
            # |l| in DisARM's variance but not in ARM's
            ("def pair_variances(logit, f0, f1):\n"
             "    s = 1 / (1 + math.exp(-abs(logit)))\n"
             "    t = 1 / (1 + math.exp(-logit))\n"
             "    d2 = (f1 - f0) ** 2\n"
             "    mean2 = d2 * (s * (1 - s)) ** 2\n"
             "    return (d2 * 2 / 3 * (1 / 8 - (t - 0.5) ** 3) - mean2,\n"
             "            d2 * s * s * (1 - s) / 2 - mean2)\n", "positive logits only"),
            ("def pair_variances(logit, f0, f1):\n"
             "    s = 1 / (1 + math.exp(-abs(logit)))\n"
             "    d = abs(f1 - f0)\n"
             "    mean2 = d * (s * (1 - s)) ** 2\n"
             "    return d * 2 / 3 * (1 / 8 - (s - 0.5) ** 3) - mean2, "
             "d * s * s * (1 - s) / 2 - mean2\n", "square"),
            # Monte Carlo with a million pairs
            ("def pair_variances(logit, f0, f1):\n"
             "    rng = np.random.default_rng(0)\n"
             "    u = rng.random(1_000_000)\n"
             "    t = 1 / (1 + np.exp(-logit))\n"
             "    b, bt = u < t, 1 - u < t\n"
             "    fb, fbt = np.where(b, f1, f0), np.where(bt, f1, f0)\n"
             "    arm = (fbt - fb) * (u - 0.5)\n"
             "    dis = 0.5 * (fb - fbt) * np.where(bt, -1, 1) * (b != bt) / "
             "(1 + np.exp(-abs(logit)))\n"
             "    return arm.var(), dis.var()\n", "Monte Carlo"),
            ("def pair_variances(logit, f0, f1):\n    return 1.0\n", "pair of numbers"),
            # hostile: the grader's own reference
            ("from lib.grading.sets import unbiased_estimators as _g\n"
             "def pair_variances(logit, f0, f1):\n"
             "    return _g.pair_variances_reference(logit, f0, f1)\n", "not allowed"),
        ],
    },
}
