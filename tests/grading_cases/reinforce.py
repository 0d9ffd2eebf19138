PREAMBLE = "import math\nimport numpy as np\nimport torch\nimport torch.nn.functional as F\n"

CASES = {
    "q1": {
        "right": [
            # torch.distributions, and the detach written as a NumPy round trip
            "def surrogate_loss(logits, samples, rewards):\n"
            "    dist = torch.distributions.Categorical(logits=logits)\n"
            "    r = torch.as_tensor(rewards.detach().numpy(), dtype=logits.dtype)\n"
            "    return torch.mean(r * dist.log_prob(samples))\n",
            # logits minus logsumexp, gathered with one-hot vectors
            "def surrogate_loss(logits, samples, rewards):\n"
            "    log_p = logits - torch.logsumexp(logits, 0)\n"
            "    onehot = F.one_hot(samples, logits.shape[0]).to(logits.dtype)\n"
            "    return (rewards.detach()[:, None] * onehot * log_p).sum() / len(samples)\n",
        ],
        "wrong": [
            ("def surrogate_loss(logits, samples, rewards):\n"
             "    return (rewards.detach() * torch.softmax(logits, -1)[samples]).mean()\n",
             "probability itself"),
            ("def surrogate_loss(logits, samples, rewards):\n"
             "    return (rewards.detach() * logits[samples]).mean()\n", "normaliser"),
            ("def surrogate_loss(logits, samples, rewards):\n"
             "    return (rewards.detach() * torch.log_softmax(logits, -1)[samples]).sum()\n",
             "average"),
            ("def surrogate_loss(logits, samples, rewards):\n"
             "    return -(rewards.detach() * torch.log_softmax(logits, -1)[samples]).mean()\n",
             "wrong sign"),
            ("def surrogate_loss(logits, samples, rewards):\n"
             "    return (rewards * torch.log_softmax(logits, -1)[samples]).mean()\n", "detach"),
            ("def surrogate_loss(logits, samples, rewards):\n"
             "    return rewards.detach().mean() + 0 * logits.sum()\n", "no gradient"),
            # right only for a batch of 6 (issue 14: the old unbiasedness check could not
            # catch what the first batch did not)
            ("def surrogate_loss(logits, samples, rewards):\n"
             "    return (rewards.detach() * torch.log_softmax(logits, -1)[samples]).sum() / 6\n",
             "batch of 1 sample"),
            ("from lib.estimators import reinforce_surrogate\n"
             "def surrogate_loss(logits, samples, rewards):\n"
             "    return reinforce_surrogate(torch.log_softmax(logits, -1)[samples], rewards)\n",
             "reinforce_surrogate"),
        ],
    },
    "q2": {
        "right": [
            # an explicit loop over samples, in NumPy
            "def loo_baseline(rewards):\n"
            "    r = rewards.detach().numpy()\n"
            "    out = np.empty_like(r)\n"
            "    for s in range(r.shape[0]):\n"
            "        out[s] = np.delete(r, s, axis=0).mean(axis=0)\n"
            "    return out\n",
            # the mean rescaled: b_s = (S * mean - r_s) / (S - 1)
            "def loo_baseline(rewards):\n"
            "    S = rewards.shape[0]\n"
            "    return (S * rewards.mean(0) - rewards) / (S - 1)\n",
        ],
        "wrong": [
            ("def loo_baseline(rewards):\n"
             "    return rewards.mean(0, keepdim=True).expand_as(rewards)\n", "1 - 1/N"),
            ("def loo_baseline(rewards):\n"
             "    return 0.5 * rewards + 0.5 * rewards.mean(0, keepdim=True)\n", "1 - 1/N"),
            ("def loo_baseline(rewards):\n"
             "    return (rewards.sum(0, keepdim=True) - rewards) / rewards.shape[0]\n", "S - 1"),
            ("def loo_baseline(rewards):\n"
             "    return rewards - (rewards.sum(0) - rewards) / (rewards.shape[0] - 1)\n",
             "advantage"),
            ("def loo_baseline(rewards):\n"
             "    n = rewards.shape[-1]\n"
             "    return (rewards.sum(-1, keepdim=True) - rewards) / (n - 1)\n", "dim 0"),
            ("def loo_baseline(rewards):\n    return rewards.mean()\n", "shape"),
            # a constant near the mean reward (issue 14: was told it is the batch mean)
            ("def loo_baseline(rewards):\n    return torch.full_like(rewards, 1.0)\n",
             "a constant"),
            # the library's baseline through an alias: seen by behaviour, not by its name
            ("import lib.estimators as E\n"
             "_b = getattr(E, 'leave_one_out' + '_baseline')\n"
             "def loo_baseline(rewards):\n    return _b(rewards)\n", "not allowed"),
        ],
    },
    "q3": {
        "right": [
            # the exact values by enumeration, written independently (a valid measurement too)
            "import itertools\n"
            "p = torch.softmax(torch.tensor([0.0, 1.0, -1.0, 0.5], dtype=torch.float64), 0)\n"
            "f = torch.tensor([5.0, 6.0, 4.0, 5.5], dtype=torch.float64)\n"
            "def total_var(baseline):\n"
            "    m1, m2 = torch.zeros(4, dtype=torch.float64), 0.0\n"
            "    for t in itertools.product(range(4), repeat=4):\n"
            "        idx = list(t); w = p[idx].prod(); r = f[idx]\n"
            "        score = torch.eye(4, dtype=torch.float64)[idx] - p\n"
            "        g = ((r - baseline(r))[:, None] * score).mean(0)\n"
            "        m1 = m1 + w * g; m2 = m2 + w * (g @ g)\n"
            "    return float(m2 - m1 @ m1)\n"
            "var_plain = total_var(lambda r: 0 * r)\n"
            "var_loo = total_var(lambda r: (r.sum() - r) / 3)\n"
            "vr_factor = var_plain / var_loo\n",
        ],
        "wrong": [
            # the batch mean including the sample's own reward
            ("var_plain = 4.73\nvar_loo = 0.0425\nvr_factor = var_plain / var_loo\n",
             "own reward"),
            # single-sample estimates instead of 4-sample averages
            ("var_plain = 4 * 4.725\nvar_loo = 0.0756\nvr_factor = var_plain / var_loo\n",
             "4 times too large"),
            ("var_plain = 4.725\nvar_loo = 0.0756\nvr_factor = var_loo / var_plain\n",
             "var_plain / var_loo"),
            ("var_plain = 4.725 ** 0.5\nvar_loo = 0.0756 ** 0.5\nvr_factor = var_plain / var_loo\n",
             "standard deviation"),
        ],
    },
    "q4": {
        "right": [
            "def critic_loss(values, rewards):\n"
            "    return 0.5 * F.mse_loss(values, rewards.detach(), reduction='sum')\n",
        ],
        "wrong": [
            ("def critic_loss(values, rewards):\n"
             "    return ((values.detach() - rewards.detach()) ** 2).mean()\n", "never learns"),
            ("def critic_loss(values, rewards):\n"
             "    return ((values - rewards) ** 2).mean()\n", "detach it"),
            ("def critic_loss(values, rewards):\n"
             "    return -((values - rewards.detach()) ** 2).mean()\n", "sign"),
            ("def critic_loss(values, rewards):\n"
             "    return (values - rewards.detach()).abs().mean()\n", "proportional"),
        ],
    },
}
