PREAMBLE = "import math\nimport numpy as np\nimport torch\n"

# ---------------------------------------------------------------------------------- q1
CASES = {
    "q1": {
        "right": [
            # float32 torch autograd (issue 14: rejected at rtol 1e-6)
            "def toy_gradient(logit, t):\n"
            "    x = torch.tensor(float(logit), requires_grad=True)\n"
            "    loss = torch.sigmoid(x) * (1 - t) ** 2 + (1 - torch.sigmoid(x)) * t ** 2\n"
            "    loss.backward()\n"
            "    return x.grad\n",
            # torch autograd through the two-outcome expectation
            "def toy_gradient(logit, t):\n"
            "    x = torch.tensor(float(logit), dtype=torch.float64, requires_grad=True)\n"
            "    theta = torch.sigmoid(x)\n"
            "    loss = theta * (1 - t) ** 2 + (1 - theta) * t ** 2\n"
            "    loss.backward()\n"
            "    return x.grad.item()\n",
            # scipy's expit, the factorised form (1 - 2t)
            "from scipy.special import expit\n"
            "def toy_gradient(logit, t):\n"
            "    p = expit(logit)\n"
            "    return p * (1 - p) * ((1 - t) ** 2 - t ** 2)\n",
        ],
        "wrong": [
            ("def toy_gradient(logit, t):\n"
             "    return (1 - t) ** 2 - t ** 2\n", "not the logit"),
            ("from scipy.special import expit\n"
             "def toy_gradient(logit, t):\n"
             "    p = expit(logit)\n"
             "    return p * (1 - p) * (t ** 2 - (1 - t) ** 2)\n", "wrong sign"),
            ("from scipy.special import expit\n"
             "def toy_gradient(logit, t):\n"
             "    p = expit(logit)\n"
             "    return 2 * (p - t) * p * (1 - p)\n", "cost at the MEAN"),
            ("def toy_gradient(logit, t):\n"
             "    e = np.exp(np.float64(logit))\n"
             "    return e / (1 + e) ** 2 * (1 - 2 * t)\n", "stably"),
        ],
    },
}

# ---------------------------------------------------------------------------------- q2
Q2_FACTOR = "reduction_factor = v[0] / v[1]\n"
Q2_RIGHT_NUMPY_LOOP = (
    "def estimator_variances(logit, n_samples, n_repeats):\n"
    "    theta = 1 / (1 + math.exp(-logit))\n"
    "    plain, loo = [], []\n"
    "    for _ in range(n_repeats):\n"
    "        b = (np.random.rand(n_samples) < theta).astype(float)\n"
    "        f = (b - 0.499) ** 2\n"
    "        s = b - theta\n"
    "        plain.append(np.mean(f * s))\n"
    "        others = np.array([np.mean(np.delete(f, i)) for i in range(n_samples)])\n"
    "        loo.append(np.mean((f - others) * s))\n"
    "    return np.var(plain), np.var(loo)\n"
    "v = estimator_variances(math.log(0.3 / 0.7), 4, 20_000)\n" + Q2_FACTOR
)


def _q2_numpy(baseline: str, grad_factor: str = "1.0", stat: str = "var", average="mean"):
    """A vectorised numpy answer with a chosen baseline / scaling / statistic (for wrong cases)."""
    return (
        "def estimator_variances(logit, n_samples, n_repeats):\n"
        "    theta = 1 / (1 + np.exp(-logit))\n"
        "    b = (np.random.rand(n_repeats, n_samples) < theta).astype(float)\n"
        "    f = (b - 0.499) ** 2\n"
        f"    s = (b - theta) * {grad_factor}\n"
        f"    plain = (f * s).{average}(axis=1)\n"
        f"    base = {baseline}\n"
        f"    loo = ((f - base) * s).{average}(axis=1)\n"
        f"    return plain.{stat}(), loo.{stat}()\n"
        "v = estimator_variances(math.log(0.3 / 0.7), 4, 20_000)\n" + Q2_FACTOR
    )


LOO = "(f.sum(axis=1, keepdims=True) - f) / (n_samples - 1)"
CASES["q2"] = {
    "right": [
        # an explicit loop over repeats, np.delete for the other samples
        Q2_RIGHT_NUMPY_LOOP,
        # lib.compare's registry: the variance of its estimates at the problem's logits
        "from lib.compare import BernoulliProblem, get_estimator\n"
        "def estimator_variances(logit, n_samples, n_repeats):\n"
        "    toy = BernoulliProblem(torch.tensor([float(logit)], dtype=torch.float64),\n"
        "                           lambda b: ((b - 0.499) ** 2).sum(-1))\n"
        "    g = torch.Generator().manual_seed(1)\n"
        "    out = []\n"
        "    for name in ('reinforce', 'reinforce_loo'):\n"
        "        est = get_estimator(name)(toy, None, n_samples, n_repeats, g)\n"
        "        out.append(est[:, 0].var().item())\n"
        "    return tuple(out)\n"
        "v = estimator_variances(math.log(0.3 / 0.7), 4, 20_000)\n" + Q2_FACTOR,
    ],
    "wrong": [
        (_q2_numpy("f.mean(axis=1, keepdims=True)"), "INCLUDING the sample's own cost"),
        # a constant baseline near E[f] (issue 14: was told it "matches the batch mean")
        (_q2_numpy("theta * 0.501 ** 2 + (1 - theta) * 0.499 ** 2"), "fixed baseline near E[f]"),
        (_q2_numpy(LOO, stat="std"), "standard deviations"),
        (_q2_numpy(LOO, grad_factor="1 / (theta * (1 - theta))"), "with respect to theta"),
        (_q2_numpy(LOO, average="sum"), "AVERAGE"),
        (_q2_numpy(LOO).replace("return plain.var(), loo.var()",
                                "return loo.var(), plain.var()")
         .replace("v[0] / v[1]", "v[1] / v[0]"), "swapped"),
        (_q2_numpy(LOO).replace("v[0] / v[1]", "v[1] / v[0]"), "inverted"),
        (_q2_numpy(LOO).replace("v[0] / v[1]", "1000.0"), "exactly these settings"),
    ],
}

# ---------------------------------------------------------------------------------- q3
Q3_TORCH_ADAM = (
    "def solve_relax_toy(sample_b, n_steps):\n"
    "    logit = torch.zeros((), dtype=torch.float64, requires_grad=True)\n"
    "    opt = torch.optim.Adam([logit], lr=0.05)\n"
    "    for _ in range(n_steps):\n"
    "        b = sample_b(logit, 2)\n"
    "        f = (b - 0.499) ** 2\n"
    "        log_p = b * torch.nn.functional.logsigmoid(logit) \\\n"
    "            + (1 - b) * torch.nn.functional.logsigmoid(-logit)\n"
    "        loss = ((f - f.flip(0)) * log_p).mean()\n"
    "        opt.zero_grad()\n"
    "        loss.backward()\n"
    "        opt.step()\n"
    "    return torch.sigmoid(logit).item()\n"
)


def _q3_numpy(grad_line: str, lr: str = "100.0", n: str = "2", update: str = "-=",
              ret: str = "1 / (1 + math.exp(-logit))"):
    return (
        "def solve_relax_toy(sample_b, n_steps):\n"
        f"    logit, lr = 0.0, {lr}\n"
        "    for _ in range(n_steps):\n"
        "        theta = 1 / (1 + math.exp(-logit))\n"
        f"        b = np.asarray(sample_b(logit, {n}), dtype=float)\n"
        "        f = (b - 0.499) ** 2\n"
        f"        grad = {grad_line}\n"
        f"        logit {update} lr * grad\n"
        f"    return {ret}\n"
    )


LOO_GRAD = "np.mean((f - f[::-1]) * (b - theta))"
CASES["q3"] = {
    "right": [
        # torch surrogate loss with log-sigmoid log-probabilities and Adam
        Q3_TORCH_ADAM,
        # a moving-average baseline, one sample per step, SGD in numpy
        "def solve_relax_toy(sample_b, n_steps):\n"
        "    logit, avg, lr = 0.0, 0.25, 300.0\n"
        "    for _ in range(n_steps):\n"
        "        theta = 1 / (1 + math.exp(-logit))\n"
        "        b = float(sample_b(logit, 1)[0])\n"
        "        f = (b - 0.499) ** 2\n"
        "        logit -= lr * (f - avg) * (b - theta)\n"
        "        avg = 0.9 * avg + 0.1 * f\n"
        "    return 1 / (1 + math.exp(-logit))\n",
        # a moving-average baseline over two samples per step (issue 14)
        "def solve_relax_toy(sample_b, n_steps):\n"
        "    logit, avg, lr = 0.0, 0.25, 100.0\n"
        "    for _ in range(n_steps):\n"
        "        theta = 1 / (1 + math.exp(-logit))\n"
        "        b = np.asarray(sample_b(logit, 2), dtype=float)\n"
        "        f = (b - 0.499) ** 2\n"
        "        logit -= lr * np.mean((f - avg) * (b - theta))\n"
        "        avg = 0.9 * avg + 0.1 * f.mean()\n"
        "    return 1 / (1 + math.exp(-logit))\n",
    ],
    "wrong": [
        (_q3_numpy(LOO_GRAD, update="+="), "ascending"),
        # straight-through: the derivative of the cost at the hard sample times dtheta/dlogit
        (_q3_numpy("np.mean(2 * (b - 0.499)) * theta * (1 - theta)", lr="0.5"), "BIASED"),
        # the same with a step far too large: runs jump to theta = 0 or 1
        (_q3_numpy("np.mean(2 * (b - 0.499)) * theta * (1 - theta)"), "too large"),
        # relaxed (Binary Concrete) sample at tau = 0.5: biased as well
        ("def solve_relax_toy(sample_b, n_steps):\n"
         "    logit = torch.zeros((), requires_grad=True)\n"
         "    opt = torch.optim.SGD([logit], lr=0.5)\n"
         "    for _ in range(n_steps):\n"
         "        u = torch.rand(2)\n"
         "        sample_b(0.0, 2)\n"
         "        y = torch.sigmoid((logit + torch.log(u) - torch.log1p(-u)) / 0.5)\n"
         "        loss = ((y - 0.499) ** 2).mean()\n"
         "        opt.zero_grad(); loss.backward(); opt.step()\n"
         "    return torch.sigmoid(logit).item()\n", "BIASED"),
        # plain REINFORCE: far too noisy for this budget
        (_q3_numpy("np.mean(f * (b - theta))", lr="5.0"), "too noisy"),
        (_q3_numpy(LOO_GRAD, n="20"), "budget"),
        (_q3_numpy(LOO_GRAD, ret="logit"), "not the logit"),
        (_q3_numpy(LOO_GRAD, lr="1e-9"), "never moved"),
        ("def solve_relax_toy(sample_b, n_steps):\n"
         "    return 0.01\n", "never calls sample_b"),
        # samples once and returns a constant below the goal (issue 14: it got 3/3)
        ("def solve_relax_toy(sample_b, n_steps):\n"
         "    sample_b(0.0, 1)\n"
         "    return 0.05\n", "last call to sample_b"),
    ],
}
