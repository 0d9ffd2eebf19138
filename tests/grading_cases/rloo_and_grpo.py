PREAMBLE = "import math\nimport numpy as np\nimport torch\n"

CASES = {
    "q1": {
        "right": [
            # the mean rescaled: A_i = G / (G - 1) * (r_i - mean)
            "def loo_advantage(rewards):\n"
            "    r = rewards.detach()\n"
            "    G = r.shape[0]\n"
            "    return G / (G - 1) * (r - r.mean(0))\n",
            # an explicit loop in NumPy, returning an array
            "def loo_advantage(rewards):\n"
            "    r = rewards.detach().numpy()\n"
            "    out = np.empty_like(r)\n"
            "    for i in range(r.shape[0]):\n"
            "        out[i] = r[i] - np.delete(r, i, axis=0).mean(axis=0)\n"
            "    return out\n",
            # with torch.no_grad and a list for a 1-D group
            "def loo_advantage(rewards):\n"
            "    with torch.no_grad():\n"
            "        G = len(rewards)\n"
            "        total = rewards.sum(dim=0)\n"
            "        return torch.stack([rewards[i] - (total - rewards[i]) / (G - 1)\n"
            "                            for i in range(G)])\n",
        ],
        "wrong": [
            ("def loo_advantage(rewards):\n"
             "    r = rewards.detach()\n"
             "    return r - r.mean(0)\n", "1 - 1/G"),
            ("def loo_advantage(rewards):\n"
             "    r = rewards.detach()\n"
             "    return (r - r.mean(0)) / (r.std(0) + 1e-8)\n", "reweights prompts"),
            ("def loo_advantage(rewards):\n"
             "    r = rewards.detach()\n"
             "    G = r.shape[0]\n"
             "    b = (r.sum(0) - r) / (G - 1)\n"
             "    return (r - b) / r.std(0, correction=0).clamp_min(1e-8)\n",
             "reweights prompts"),
            ("def loo_advantage(rewards):\n"
             "    r = rewards.detach()\n"
             "    return r - (r.sum(0) - r) / r.shape[0]\n", "G - 1"),
            ("def loo_advantage(rewards):\n"
             "    r = rewards.detach()\n"
             "    return (r.sum(0) - r) / (r.shape[0] - 1)\n", "return the advantage"),
            ("def loo_advantage(rewards):\n"
             "    G = rewards.shape[0]\n"
             "    return rewards.detach() - (rewards.sum(0) - rewards) / (G - 1)\n",
             "not detached"),
            ("def loo_advantage(rewards):\n"
             "    r = rewards.detach()\n"
             "    n = r.shape[-1]\n"
             "    return r - (r.sum(-1, keepdim=True) - r) / (n - 1)\n", "dim 0"),
            # leave-one-out over every entry: right for [G] only
            ("def loo_advantage(rewards):\n"
             "    r = rewards.detach()\n"
             "    return r - (r.sum() - r) / (r.numel() - 1)\n", "shape [6, 4]"),
            ("def loo_advantage(rewards):\n    return rewards.detach().mean(0)\n", "shape"),
            # hostile: the library's advantage through an alias, found by behaviour
            ("import lib.sequences as S\n"
             "_f = getattr(S, 'group_' + 'advantages')\n"
             "def loo_advantage(rewards):\n    return _f(rewards, 'loo')\n", "not allowed"),
            # hostile: the grader's own reference formula
            ("from lib.grading.sets import rloo_and_grpo as _g\n"
             "def loo_advantage(rewards):\n"
             "    return _g.loo_advantage_reference(rewards.detach().numpy())\n", "not allowed"),
            # hostile: right once, then the first answer of each shape again (a cache)
            ("_seen = {}\n"
             "def loo_advantage(rewards):\n"
             "    r = rewards.detach()\n"
             "    key = tuple(r.shape)\n"
             "    if key not in _seen:\n"
             "        _seen[key] = r - (r.sum(0) - r) / (r.shape[0] - 1)\n"
             "    return _seen[key]\n", "no cached results"),
            # hostile: changes the rewards in place (the grader keeps its own copy)
            ("def loo_advantage(rewards):\n"
             "    r = rewards.detach()\n"
             "    r -= r.mean(0)\n"
             "    return r\n", "1 - 1/G"),
            # hostile: an object that claims to equal everything
            ("class _Any(float):\n"
             "    def __eq__(self, other):\n        return True\n"
             "    __hash__ = float.__hash__\n"
             "def loo_advantage(rewards):\n    return _Any(0.0)\n", "shape"),
            ("def loo_advantage(rewards):\n"
             "    r = rewards.detach()\n"
             "    return r / 0 * 0\n", "NaN"),
        ],
    },
    "q2": {
        "right": [
            # the sum over k successes among the other G - 1 responses
            "def loo_std_factor(p, G):\n"
            "    def s(m):\n"
            "        return torch.tensor([1.0] * m + [0.0] * (G - m), dtype=torch.float64).std()\n"
            "    total = 0.0\n"
            "    for k in range(G):\n"
            "        w = math.comb(G - 1, k) * p ** k * (1 - p) ** (G - 1 - k)\n"
            "        if k + 1 < G:\n"
            "            total += w * (1 - k / (G - 1)) / float(s(k + 1))\n"
            "        if k > 0:\n"
            "            total += w * (k / (G - 1)) / float(s(k))\n"
            "    return total\n",
            # the chapter's w(p, G) times G / (G - 1), since r_i - b_i = G/(G-1) (r_i - mean)
            "def loo_std_factor(p, G):\n"
            "    def std(m):\n"
            "        return math.sqrt(m * (G - m) / G / (G - 1))\n"
            "    total = 0.0\n"
            "    for k in range(G):\n"
            "        weight = math.comb(G - 1, k) * p**k * (1 - p) ** (G - 1 - k)\n"
            "        if k + 1 < G:\n"
            "            total += weight * (1 - (k + 1) / G) / std(k + 1)\n"
            "        if k > 0:\n"
            "            total += weight * (k / G) / std(k)\n"
            "    return G / (G - 1) * total\n",
            # vectorised over k with scipy's binomial pmf, and the std of a 0/1 group written
            # as sqrt(m (G - m) / (G (G - 1)))
            "from scipy.stats import binom\n"
            "def loo_std_factor(p, G):\n"
            "    k = np.arange(G)\n"
            "    pmf = binom.pmf(k, G - 1, p)\n"
            "    def s(m):\n"
            "        return np.sqrt(m * (G - m) / (G * (G - 1.0)))\n"
            "    with np.errstate(divide='ignore', invalid='ignore'):\n"
            "        up = np.where(k + 1 < G, (1 - k / (G - 1)) / s(k + 1), 0.0)\n"
            "        down = np.where(k > 0, (k / (G - 1)) / s(k), 0.0)\n"
            "    return float((pmf * (up + down)).sum())\n",
        ],
        "wrong": [
            ("def loo_std_factor(p, G):\n    return 1.0\n", "factor is 1"),
            ("def loo_std_factor(p, G):\n    return 1 / math.sqrt(p * (1 - p))\n",
             "large-G limit"),
            ("def loo_std_factor(p, G):\n"
             "    def s(m):\n"
             "        return np.std([1.0] * m + [0.0] * (G - m))\n"
             "    total = 0.0\n"
             "    for k in range(G):\n"
             "        w = math.comb(G - 1, k) * p ** k * (1 - p) ** (G - 1 - k)\n"
             "        if k + 1 < G:\n"
             "            total += w * (1 - k / (G - 1)) / s(k + 1)\n"
             "        if k > 0:\n"
             "            total += w * (k / (G - 1)) / s(k)\n"
             "    return total\n", "correction=1"),
            ("def loo_std_factor(p, G):\n"
             "    def std(m):\n"
             "        return math.sqrt(m * (G - m) / G / (G - 1))\n"
             "    total = 0.0\n"
             "    for k in range(G):\n"
             "        weight = math.comb(G - 1, k) * p**k * (1 - p) ** (G - 1 - k)\n"
             "        if k + 1 < G:\n"
             "            total += weight * (1 - (k + 1) / G) / std(k + 1)\n"
             "        if k > 0:\n"
             "            total += weight * (k / G) / std(k)\n"
             "    return total\n", "group mean"),
            ("def loo_std_factor(p, G):\n    return 1 - 1 / G\n", "depends on G only"),
            # the groups with std 0 not set to 0: 0 / 0 in NumPy is NaN
            ("def loo_std_factor(p, G):\n"
             "    def s(m):\n"
             "        return np.sqrt(np.float64(m * (G - m)) / G / (G - 1))\n"
             "    total = 0.0\n"
             "    with np.errstate(all='ignore'):\n"
             "        for k in range(G):\n"
             "            w = math.comb(G - 1, k) * p ** k * (1 - p) ** (G - 1 - k)\n"
             "            total += w * (1 - k / (G - 1)) / s(k + 1)\n"
             "            total += w * (k / (G - 1)) / s(k)\n"
             "    return total\n", "std 0"),
            # a Monte Carlo estimate instead of the exact sum (seeded, 200,000 groups)
            ("def loo_std_factor(p, G):\n"
             "    rng = np.random.default_rng(0)\n"
             "    r = (rng.random((200_000, G)) < p).astype(float)\n"
             "    s = r.std(1, ddof=1)\n"
             "    b = (r.sum(1) - r[:, 0]) / (G - 1)\n"
             "    a = np.where(s > 0, (r[:, 0] - b) / np.where(s > 0, s, 1), 0.0)\n"
             "    return a[r[:, 0] == 1].mean() - a[r[:, 0] == 0].mean()\n", "Monte Carlo"),
            # hostile: the library's exact expectation, reached through an alias
            ("import lib.sequences as S\n"
             "_e = getattr(S, 'expected_group_' + 'gradient')\n"
             "def loo_std_factor(p, G):\n"
             "    return _e(None, None, G, 'rloo')\n", "not allowed"),
            # hostile: the grader's own reference
            ("from lib.grading.sets import rloo_and_grpo as _g\n"
             "def loo_std_factor(p, G):\n    return _g.loo_std_factor_reference(p, G)\n",
             "not allowed"),
            ("def loo_std_factor(p, G):\n    return [1.0, 2.0]\n", "one number"),
            ("def loo_std_factor(p, G):\n    return 'sqrt(2)'\n", "has type str"),
        ],
    },
    "q3": {
        "right": [
            # a mask from the first end token, with a cumulative sum
            "def length_weights(tokens, eos, method):\n"
            "    ended_before = torch.cumsum((tokens == eos).long(), -1) - (tokens == eos).long()\n"
            "    real = (ended_before == 0).double()\n"
            "    if method == 'grpo':\n"
            "        return real / real.sum(-1, keepdim=True)\n"
            "    return real / tokens.shape[-1]\n",
            # row by row in NumPy
            "def length_weights(tokens, eos, method):\n"
            "    t = np.asarray(tokens)\n"
            "    T = t.shape[-1]\n"
            "    flat = t.reshape(-1, T)\n"
            "    out = np.zeros(flat.shape)\n"
            "    for i, row in enumerate(flat):\n"
            "        ends = np.flatnonzero(row == eos)\n"
            "        n = ends[0] + 1 if len(ends) else T\n"
            "        out[i, :n] = 1 / n if method == 'grpo' else 1 / T\n"
            "    return out.reshape(t.shape)\n",
        ],
        "wrong": [
            ("def length_weights(tokens, eos, method):\n"
             "    end = (tokens == eos).long()\n"
             "    ended_before = torch.cumsum(end, -1) - end\n"
             "    real = (ended_before == 0).double()\n"
             "    return real / real.sum(-1, keepdim=True)\n", "other method"),
            ("def length_weights(tokens, eos, method):\n"
             "    real = (torch.cumsum((tokens == eos).long(), -1) == 0).double()\n"
             "    if method == 'grpo':\n"
             "        return real / real.sum(-1, keepdim=True).clamp_min(1)\n"
             "    return real / tokens.shape[-1]\n", "end token itself"),
            ("def length_weights(tokens, eos, method):\n"
             "    T = tokens.shape[-1]\n"
             "    pos = torch.arange(T)\n"
             "    last = torch.where(tokens == eos, pos, -1).amax(-1, keepdim=True)\n"
             "    real = ((pos <= last) | (last < 0)).double()\n"
             "    if method == 'grpo':\n"
             "        return real / real.sum(-1, keepdim=True)\n"
             "    return real / T\n", "FIRST end token"),
            ("def length_weights(tokens, eos, method):\n"
             "    T = tokens.shape[-1]\n"
             "    return torch.full(tokens.shape, 1.0 / T, dtype=torch.float64)\n", "padding"),
            ("def length_weights(tokens, eos, method):\n"
             "    end = (tokens == eos).long()\n"
             "    ended_before = torch.cumsum(end, -1) - end\n"
             "    real = (ended_before == 0).double()\n"
             "    if method == 'grpo':\n"
             "        return real / real.sum()\n"
             "    return real / tokens.shape[-1]\n", "DAPO"),
            ("def length_weights(tokens, eos, method):\n"
             "    end = (tokens == eos).long()\n"
             "    ended_before = torch.cumsum(end, -1) - end\n"
             "    real = (ended_before == 0).double()\n"
             "    if method == 'grpo':\n"
             "        return real / real.sum(-1, keepdim=True)\n"
             "    return real\n", "constant 1/T"),
            ("def length_weights(tokens, eos, method):\n"
             "    return torch.ones(tokens.shape[0])\n", "shape"),
            # hostile: the grader's own reference
            ("from lib.grading.sets import rloo_and_grpo as _g\n"
             "def length_weights(tokens, eos, method):\n"
             "    return _g.length_weights_reference(tokens.numpy(), eos, method)\n",
             "not allowed"),
        ],
    },
}
