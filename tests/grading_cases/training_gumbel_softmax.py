PREAMBLE = (
    "import math\n"
    "import numpy as np\n"
    "import torch\n"
    "from lib.bottleneck import optimal_circle_loss, train_autoencoder\n"
)

# The q3 sweeps of a right answer, computed once and pasted into every q3 case that needs them
# (cases are independent programs; the runs are deterministic).
_SWEEPS_RIGHT = (
    "TAUS = [0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0]\n"
    "SEEDS = [0, 1, 2]\n"
    "def _right_sweep(taus, seed=0):\n"
    "    run = train_autoencoder('gumbel_softmax', list(taus), seed=seed)\n"
    "    return {t: float(v) for t, v in zip(taus, run.test['argmax'])}\n"
)

CASES = {
    "q1": {
        "right": [
            # the often-copied form: exact for one-hot forward values (see the chapter)
            "def st_gumbel_softmax(logits, tau, gumbels):\n"
            "    y = torch.softmax((logits + gumbels) / tau, dim=-1)\n"
            "    hard = (y == y.max(dim=-1, keepdim=True).values).to(y.dtype)\n"
            "    return hard - y.detach() + y\n",
            # lib's straight_through and scatter_ for the one-hot vector
            "from lib.estimators import straight_through\n"
            "def st_gumbel_softmax(logits, tau, gumbels):\n"
            "    perturbed = logits + gumbels\n"
            "    soft = (perturbed / tau).log_softmax(-1).exp()\n"
            "    index = perturbed.argmax(-1, keepdim=True)\n"
            "    hard = torch.zeros_like(soft).scatter_(-1, index, 1.0)\n"
            "    return straight_through(hard, soft)\n",
            # computed and returned in float64 (issue 14: the probe's loss failed on it)
            "def st_gumbel_softmax(logits, tau, gumbels):\n"
            "    y = torch.softmax((logits.double() + gumbels.double()) / tau, dim=-1)\n"
            "    hard = torch.zeros_like(y).scatter_(-1, y.argmax(-1, keepdim=True), 1.0)\n"
            "    return (hard - y).detach() + y\n",
        ],
        "wrong": [
            # the stop-gradient on the wrong term: the gradient is flipped (issue 14)
            ("def st_gumbel_softmax(logits, tau, gumbels):\n"
             "    soft = torch.softmax((logits + gumbels) / tau, dim=-1)\n"
             "    hard = torch.nn.functional.one_hot(soft.argmax(-1), logits.shape[-1]).float()\n"
             "    return hard - (soft - soft.detach())\n", "NEGATIVE"),
            # relaxed sample only
            ("def st_gumbel_softmax(logits, tau, gumbels):\n"
             "    return torch.softmax((logits + gumbels) / tau, dim=-1)\n", "relaxed sample"),
            # one-hot without gradient
            ("def st_gumbel_softmax(logits, tau, gumbels):\n"
             "    index = (logits + gumbels).argmax(-1)\n"
             "    return torch.nn.functional.one_hot(index, logits.shape[-1]).float()\n",
             "no gradient"),
            # plain straight-through: probabilities' gradient, no noise, no temperature
            ("def st_gumbel_softmax(logits, tau, gumbels):\n"
             "    probs = torch.softmax(logits, dim=-1)\n"
             "    hard = torch.nn.functional.one_hot((logits + gumbels).argmax(-1), "
             "logits.shape[-1]).float()\n"
             "    return hard + (probs - probs.detach())\n", "without the Gumbel noise"),
            # temperature forgotten in the backward pass
            ("def st_gumbel_softmax(logits, tau, gumbels):\n"
             "    soft = torch.softmax(logits + gumbels, dim=-1)\n"
             "    hard = torch.nn.functional.one_hot(soft.argmax(-1), logits.shape[-1]).float()\n"
             "    return hard + (soft - soft.detach())\n", "temperature"),
            # forward at the argmax of the logits: not a sample
            ("def st_gumbel_softmax(logits, tau, gumbels):\n"
             "    soft = torch.softmax((logits + gumbels) / tau, dim=-1)\n"
             "    hard = torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).float()\n"
             "    return hard + (soft - soft.detach())\n", "without the Gumbel noise"),
            # new noise drawn instead of the given one
            ("def st_gumbel_softmax(logits, tau, gumbels):\n"
             "    g = -torch.log(-torch.log(torch.rand_like(logits).clamp(1e-10, 1 - 1e-7)))\n"
             "    soft = torch.softmax((logits + g) / tau, dim=-1)\n"
             "    hard = torch.nn.functional.one_hot(soft.argmax(-1), logits.shape[-1]).float()\n"
             "    return hard + (soft - soft.detach())\n", "do not draw new noise"),
            # a forward value that is only approximately one-hot
            ("def st_gumbel_softmax(logits, tau, gumbels):\n"
             "    soft = torch.softmax((logits + gumbels) / tau, dim=-1)\n"
             "    hard = torch.nn.functional.one_hot(soft.argmax(-1), logits.shape[-1]).float()\n"
             "    return hard * (1 - 1e-6) + 1e-6 / logits.shape[-1] + (soft - soft.detach())\n",
             "up to rounding"),
            # returns numpy
            ("def st_gumbel_softmax(logits, tau, gumbels):\n"
             "    z = (logits + gumbels).detach().numpy()\n"
             "    return np.eye(z.shape[1])[z.argmax(1)]\n", "torch tensor"),
        ],
    },
    "q2": {
        "right": [
            # numpy, floor written with the remainder
            "def anneal(step, tau0=1.0, rate=3e-5, tau_min=0.5, every=1000):\n"
            "    t = step - step % every\n"
            "    return float(np.maximum(tau_min, tau0 * np.exp(-rate * t)))\n",
            # torch scalar result, math.floor
            "def anneal(step, tau0=1.0, rate=3e-5, tau_min=0.5, every=1000):\n"
            "    t = math.floor(step / every) * every\n"
            "    return torch.clamp(tau0 * torch.exp(torch.tensor(-rate * t, dtype=torch.float64)),"
            " min=tau_min)\n",
        ],
        "wrong": [
            ("def anneal(step, tau0=1.0, rate=3e-5, tau_min=0.5, every=1000):\n"
             "    return tau0 * math.exp(-rate * (step // every) * every)\n", "floor"),
            ("def anneal(step, tau0=1.0, rate=3e-5, tau_min=0.5, every=1000):\n"
             "    return max(tau_min, tau0 * math.exp(-rate * step))\n", "rounded down"),
            ("def anneal(step, tau0=1.0, rate=3e-5, tau_min=0.5, every=1000):\n"
             "    return max(tau_min, tau0 * math.exp(-rate * (step // every)))\n", "too slowly"),
            # the stateful per-update decay of many ports, as a function of the step
            ("def anneal(step, tau0=1.0, rate=3e-5, tau_min=0.5, every=1000):\n"
             "    tau = tau0\n"
             "    for i in range(every, step + 1, every):\n"
             "        tau = max(tau_min, tau * math.exp(-rate * i))\n"
             "    return tau\n", "compounds"),
            ("def anneal(step, tau0=1.0, rate=3e-5, tau_min=0.5, every=1000):\n"
             "    return min(tau_min, tau0 * math.exp(-rate * (step // every) * every))\n",
             "not min"),
            ("def anneal(step, tau0=1.0, rate=3e-5, tau_min=0.5, every=1000):\n"
             "    return max(tau_min, tau0 * math.exp(-rate * math.ceil(step / every) * every))\n",
             "rounded up"),
            # hard-coded initial temperature
            ("def anneal(step, tau0=1.0, rate=3e-5, tau_min=0.5, every=1000):\n"
             "    return max(tau_min, math.exp(-rate * (step // every) * every))\n",
             "ignores the argument tau0"),
            ("def anneal(step, tau0=1.0, rate=3e-4, tau_min=0.5, every=1000):\n"
             "    return max(tau_min, tau0 * math.exp(-rate * (step // every) * every))\n",
             "defaults"),
        ],
    },
    "q3": {
        "right": [
            # one run per temperature, the argmax loss computed from the trained model
            "TAUS = [0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0]\n"
            "SEEDS = [0, 1, 2]\n"
            "def relaxed_sweep(taus, seed=0):\n"
            "    out = {}\n"
            "    for tau in taus:\n"
            "        run = train_autoencoder('gumbel_softmax', tau, seed=seed)\n"
            "        with torch.no_grad():\n"
            "            errors = run.model.squared_errors(run.test_x)[0]\n"
            "            best = run.model.encode(run.test_x)[0].argmax(-1)\n"
            "        out[tau] = errors[torch.arange(len(best)), best].mean().item()\n"
            "    return out\n"
            "sweeps = {s: relaxed_sweep(TAUS, seed=s) for s in SEEDS}\n"
            "limit = 1.2 * optimal_circle_loss(4)\n"
            "working_taus = [t for t in TAUS if max(sweeps[s][t] for s in SEEDS) <= limit]\n",
        ],
        "wrong": [
            # the relaxed training objective instead of the argmax loss
            ("TAUS = [0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0]\n"
             "def relaxed_sweep(taus, seed=0):\n"
             "    run = train_autoencoder('gumbel_softmax', list(taus), seed=seed)\n"
             "    return dict(zip(taus, run.test['relaxed'].tolist()))\n"
             "sweeps = {s: relaxed_sweep(TAUS, seed=s) for s in [0, 1, 2]}\n"
             "working_taus = [0.3, 0.5, 1.0]\n", "relaxed loss"),
            # straight-through instead of relaxed training
            ("TAUS = [0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0]\n"
             "def relaxed_sweep(taus, seed=0):\n"
             "    run = train_autoencoder('st_gumbel_softmax', list(taus), seed=seed)\n"
             "    return dict(zip(taus, run.test['argmax'].tolist()))\n"
             "sweeps = {s: relaxed_sweep(TAUS, seed=s) for s in [0, 1, 2]}\n"
             "working_taus = [0.3, 0.5, 1.0]\n", "straight-through"),
            # numbers rounded for display: they no longer match a fresh run
            (_SWEEPS_RIGHT
             + "relaxed_sweep = _right_sweep\n"
             "sweeps = {s: {t: round(v, 3) for t, v in relaxed_sweep(TAUS, seed=s).items()}\n"
             "          for s in SEEDS}\n"
             "working_taus = [0.3, 0.5, 1.0]\n", "fresh run"),
            # the seed argument ignored
            ("TAUS = [0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0]\n"
             "def relaxed_sweep(taus, seed=0):\n"
             "    run = train_autoencoder('gumbel_softmax', list(taus))\n"
             "    return dict(zip(taus, run.test['argmax'].tolist()))\n"
             "sweeps = {s: relaxed_sweep(TAUS, seed=s) for s in [0, 1, 2]}\n"
             "working_taus = [0.3, 0.5, 1.0]\n", "ignores its `seed`"),
            # judged on seed 1 only: 0.05 works for seed 1 but not for every seed (so in float32,
            # the default dtype here, and in float64, the exercise notebook's)
            (_SWEEPS_RIGHT
             + "relaxed_sweep = _right_sweep\n"
             "sweeps = {s: relaxed_sweep(TAUS, seed=s) for s in SEEDS}\n"
             "limit = 1.2 * optimal_circle_loss(4)\n"
             "working_taus = [t for t in TAUS if sweeps[1][t] <= limit]\n", "every seed"),
            # a working temperature left out (1.0 works for every seed in float32 and float64)
            (_SWEEPS_RIGHT
             + "relaxed_sweep = _right_sweep\n"
             "sweeps = {s: relaxed_sweep(TAUS, seed=s) for s in SEEDS}\n"
             "working_taus = [0.5]\n", "not in `working_taus`"),
        ],
    },
}
