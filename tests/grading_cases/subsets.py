PREAMBLE = "import functools\nimport itertools\nimport math\nimport numpy as np\nimport torch\n"

CASES = {
    "q1": {
        "right": [
            # a 1-D table in torch, updated from the largest j down
            "def log_partition(logits, k):\n"
            "    e = torch.full((k + 1,), -math.inf, dtype=logits.dtype)\n"
            "    e[0] = 0.0\n"
            "    for x in logits:\n"
            "        for j in range(k, 0, -1):\n"
            "            e[j] = torch.logaddexp(e[j], e[j - 1] + x)\n"
            "    return e[k]\n",
            # a 2-D table in NumPy, one row per item
            "def log_partition(logits, k):\n"
            "    t = np.asarray(logits, dtype=float)\n"
            "    n = len(t)\n"
            "    a = np.full((n + 1, k + 1), -np.inf)\n"
            "    a[:, 0] = 0.0\n"
            "    for i in range(1, n + 1):\n"
            "        for j in range(1, k + 1):\n"
            "            a[i, j] = np.logaddexp(a[i - 1, j], t[i - 1] + a[i - 1, j - 1])\n"
            "    return float(a[n, k])\n",
            # a memoised recursion on (items left, places left), pure Python
            "def log_partition(logits, k):\n"
            "    t = [float(x) for x in logits]\n"
            "    @functools.lru_cache(maxsize=None)\n"
            "    def z(i, j):\n"
            "        if j == 0:\n"
            "            return 0.0\n"
            "        if i < j:\n"
            "            return -math.inf\n"
            "        out, take = z(i - 1, j), t[i - 1] + z(i - 1, j - 1)\n"
            "        m = max(out, take)\n"
            "        return m + math.log(math.exp(out - m) + math.exp(take - m))\n"
            "    return z(len(t), k)\n",
            # float32 throughout, vectorised over j with logsumexp of the two options
            "def log_partition(logits, k):\n"
            "    x = logits.float()\n"
            "    e = torch.full((k + 1,), float('-inf'))\n"
            "    e = e.float()\n"
            "    e[0] = 0.0\n"
            "    for xi in x:\n"
            "        taken = torch.cat([torch.tensor([float('-inf')]), e[:-1] + xi])\n"
            "        e = torch.logsumexp(torch.stack([e, taken]), dim=0)\n"
            "    return e[k]\n",
        ],
        "wrong": [
            # the recursion in probability space
            ("def log_partition(logits, k):\n"
             "    x = torch.exp(logits)\n"
             "    e = torch.zeros(k + 1, dtype=logits.dtype)\n"
             "    e[0] = 1.0\n"
             "    for xi in x:\n"
             "        for j in range(k, 0, -1):\n"
             "            e[j] = e[j] + xi * e[j - 1]\n"
             "    return torch.log(e[k])\n", "overflows"),
            # probability space after subtracting the largest logit
            ("def log_partition(logits, k):\n"
             "    m = logits.max()\n"
             "    x = torch.exp(logits - m)\n"
             "    e = torch.zeros(k + 1, dtype=logits.dtype)\n"
             "    e[0] = 1.0\n"
             "    for xi in x:\n"
             "        for j in range(k, 0, -1):\n"
             "            e[j] = e[j] + xi * e[j - 1]\n"
             "    return torch.log(e[k]) + k * m\n", "900 apart"),
            # subsets of size at most k
            ("def log_partition(logits, k):\n"
             "    e = torch.full((k + 1,), -math.inf, dtype=logits.dtype)\n"
             "    e[0] = 0.0\n"
             "    for x in logits:\n"
             "        for j in range(k, 0, -1):\n"
             "            e[j] = torch.logaddexp(e[j], e[j - 1] + x)\n"
             "    return torch.logsumexp(e, 0)\n", "at most k"),
            # the best subset's score
            ("def log_partition(logits, k):\n"
             "    return torch.sort(logits, descending=True).values[:k].sum()\n", "a max"),
            # in place with j increasing: an item is taken several times
            ("def log_partition(logits, k):\n"
             "    e = torch.full((k + 1,), -math.inf, dtype=logits.dtype)\n"
             "    e[0] = 0.0\n"
             "    for x in logits:\n"
             "        for j in range(1, k + 1):\n"
             "            e[j] = torch.logaddexp(e[j], e[j - 1] + x)\n"
             "    return e[k]\n", "more than once"),
            # the column of size k - 1
            ("def log_partition(logits, k):\n"
             "    n = len(logits)\n"
             "    e = torch.full((n + 1,), -math.inf, dtype=logits.dtype)\n"
             "    e[0] = 0.0\n"
             "    for x in logits:\n"
             "        for j in range(n, 0, -1):\n"
             "            e[j] = torch.logaddexp(e[j], e[j - 1] + x)\n"
             "    return e[k - 1] if k > 0 else e[0]\n", "k - 1"),
            # the loop misses the last item
            ("def log_partition(logits, k):\n"
             "    e = torch.full((k + 1,), -math.inf, dtype=logits.dtype)\n"
             "    e[0] = 0.0\n"
             "    for i in range(len(logits) - 1):\n"
             "        for j in range(k, 0, -1):\n"
             "            e[j] = torch.logaddexp(e[j], e[j - 1] + logits[i])\n"
             "    return e[k]\n", "last item"),
            # Z_0 instead of log Z_0
            ("def log_partition(logits, k):\n"
             "    if k == 0:\n"
             "        return 1.0\n"
             "    e = torch.full((k + 1,), -math.inf, dtype=logits.dtype)\n"
             "    e[0] = 0.0\n"
             "    for x in logits:\n"
             "        for j in range(k, 0, -1):\n"
             "            e[j] = torch.logaddexp(e[j], e[j - 1] + x)\n"
             "    return e[k]\n", "k = 0"),
            # enumeration, which gives up at n = 60
            ("def log_partition(logits, k):\n"
             "    n = len(logits)\n"
             "    if math.comb(n, k) > 10**6:\n"
             "        raise ValueError('too many subsets')\n"
             "    w = [logits[list(c)].sum() for c in itertools.combinations(range(n), k)]\n"
             "    return torch.logsumexp(torch.stack(w), 0) if k else 0.0\n", "raised"),
            # hostile: the library's DP through an alias
            ("import lib.subsets as S\n"
             "_f = getattr(S, 'ksubset_log_' + 'partition')\n"
             "def log_partition(logits, k):\n"
             "    return _f(logits, k) if k else 0.0\n", "not allowed"),
            # hostile: the grader's own reference
            ("from lib.grading.sets import subsets as _g\n"
             "def log_partition(logits, k):\n"
             "    return _g.log_partition_reference(logits.numpy(), k)\n", "not allowed"),
            # hostile: a cache keyed by (n, k) returns stale values for new logits
            ("_seen = {}\n"
             "def log_partition(logits, k):\n"
             "    key = (len(logits), k)\n"
             "    if key not in _seen:\n"
             "        e = np.full(k + 1, -np.inf)\n"
             "        e[0] = 0.0\n"
             "        for x in logits.numpy():\n"
             "            e[1:] = np.logaddexp(e[1:], e[:-1] + x)\n"
             "        _seen[key] = e[k]\n"
             "    return _seen[key]\n", "-800"),
            # hostile: an object that claims to equal everything
            ("class _Any(float):\n"
             "    def __eq__(self, other):\n        return True\n"
             "    __hash__ = float.__hash__\n"
             "def log_partition(logits, k):\n    return _Any(0.0)\n", "enumeration"),
            ("def log_partition(logits, k):\n    return torch.zeros(2)\n", "one number"),
        ],
    },
    "q2": {
        "right": [
            # the sequential sampler from the last item, vectorised over the samples
            "def sample_subset(logits, k, n_samples):\n"
            "    n = len(logits)\n"
            "    a = torch.full((n + 1, k + 1), -math.inf, dtype=logits.dtype)\n"
            "    a[:, 0] = 0.0\n"
            "    for i in range(1, n + 1):\n"
            "        a[i, 1:] = torch.logaddexp(a[i - 1, 1:], a[i - 1, :-1] + logits[i - 1])\n"
            "    z = torch.zeros(n_samples, n)\n"
            "    left = torch.full((n_samples,), k)\n"
            "    for i in range(n, 0, -1):\n"
            "        r = left.clamp(min=1)\n"
            "        p = torch.exp(logits[i - 1] + a[i - 1, r - 1] - a[i, r])\n"
            "        take = (torch.rand(n_samples) < p) & (left > 0)\n"
            "        z[:, i - 1] = take.double()\n"
            "        left = left - take.long()\n"
            "    return z\n",
            # from the first item, with the table of the items after i, one sample at a time
            "def sample_subset(logits, k, n_samples):\n"
            "    t = logits.numpy()\n"
            "    n = len(t)\n"
            "    b = np.full((n + 2, k + 1), -np.inf)\n"
            "    b[:, 0] = 0.0\n"
            "    for i in range(n, 0, -1):\n"
            "        for j in range(1, k + 1):\n"
            "            b[i, j] = np.logaddexp(b[i + 1, j], t[i - 1] + b[i + 1, j - 1])\n"
            "    out = np.zeros((n_samples, n))\n"
            "    for s in range(n_samples):\n"
            "        r = k\n"
            "        for i in range(1, n + 1):\n"
            "            if r == 0:\n"
            "                break\n"
            "            p = math.exp(t[i - 1] + b[i + 1, r - 1] - b[i, r])\n"
            "            if np.random.random() < p:\n"
            "                out[s, i - 1] = 1\n"
            "                r -= 1\n"
            "    return out\n",
            # rejection: independent coins, shifted so that about k come up, kept when k do
            "def sample_subset(logits, k, n_samples):\n"
            "    t = logits.numpy()\n"
            "    lo, hi = -t.max() - 50, -t.min() + 50\n"
            "    for _ in range(100):\n"
            "        c = (lo + hi) / 2\n"
            "        if (1 / (1 + np.exp(-(t + c)))).sum() > k:\n"
            "            hi = c\n"
            "        else:\n"
            "            lo = c\n"
            "    p = 1 / (1 + np.exp(-(t + c)))\n"
            "    kept = []\n"
            "    while sum(len(x) for x in kept) < n_samples:\n"
            "        z = np.random.random((20_000, len(t))) < p\n"
            "        kept.append(z[z.sum(1) == k])\n"
            "    return np.concatenate(kept)[:n_samples].astype(float)\n",
        ],
        "wrong": [
            # Gumbel-top-k: the Plackett-Luce law
            ("def sample_subset(logits, k, n_samples):\n"
             "    g = -torch.log(-torch.log(torch.rand(n_samples, len(logits))))\n"
             "    idx = (logits + g).topk(k, dim=-1).indices\n"
             "    return torch.zeros(n_samples, len(logits)).scatter(-1, idx, 1.0)\n",
             "Plackett-Luce"),
            # k draws without replacement from the softmax: the same law
            ("def sample_subset(logits, k, n_samples):\n"
             "    p = torch.softmax(logits, 0).expand(n_samples, -1)\n"
             "    idx = torch.multinomial(p, k, replacement=False)\n"
             "    return torch.zeros(n_samples, len(logits)).scatter(-1, idx, 1.0)\n",
             "Plackett-Luce"),
            # independent coins
            ("def sample_subset(logits, k, n_samples):\n"
             "    return (torch.rand(n_samples, len(logits)) < torch.sigmoid(logits)).double()\n",
             "exactly k"),
            # the most likely subset, every time
            ("def sample_subset(logits, k, n_samples):\n"
             "    idx = logits.topk(k).indices\n"
             "    z = torch.zeros(len(logits))\n"
             "    z[idx] = 1.0\n"
             "    return z.expand(n_samples, -1)\n", "same subset"),
            # the conditional probability with the current item's row: off by one
            ("def sample_subset(logits, k, n_samples):\n"
             "    n = len(logits)\n"
             "    a = torch.full((n + 1, k + 1), -math.inf, dtype=logits.dtype)\n"
             "    a[:, 0] = 0.0\n"
             "    for i in range(1, n + 1):\n"
             "        a[i, 1:] = torch.logaddexp(a[i - 1, 1:], a[i - 1, :-1] + logits[i - 1])\n"
             "    z = torch.zeros(n_samples, n)\n"
             "    left = torch.full((n_samples,), k)\n"
             "    for i in range(n, 0, -1):\n"
             "        r = left.clamp(min=1)\n"
             "        p = torch.exp(logits[i - 1] + a[i, r - 1] - a[i, r]).clamp(max=1)\n"
             "        take = ((torch.rand(n_samples) < p) | (left >= i)) & (left > 0)\n"
             "        z[:, i - 1] = take.double()\n"
             "        left = left - take.long()\n"
             "    return z\n", "do not follow the k-subset law"),
            # item indices instead of indicators
            ("def sample_subset(logits, k, n_samples):\n"
             "    p = torch.softmax(logits, 0).expand(n_samples, -1)\n"
             "    return torch.multinomial(p, k, replacement=False)\n", "indicator"),
            # the marginals, not samples
            ("def sample_subset(logits, k, n_samples):\n"
             "    p = torch.sigmoid(logits)\n"
             "    return (k * p / p.sum()).expand(n_samples, -1)\n", "other than 0 and 1"),
            # enumeration: right for 6 items, gives up at 40
            ("def sample_subset(logits, k, n_samples):\n"
             "    n = len(logits)\n"
             "    if math.comb(n, k) > 10**5:\n"
             "        raise ValueError('too many subsets')\n"
             "    combos = list(itertools.combinations(range(n), k))\n"
             "    w = torch.stack([logits[list(c)].sum() for c in combos])\n"
             "    idx = torch.multinomial(torch.softmax(w, 0), n_samples, replacement=True)\n"
             "    z = torch.zeros(n_samples, n)\n"
             "    for s, c in enumerate(idx.tolist()):\n"
             "        z[s, list(combos[c])] = 1.0\n"
             "    return z\n", "raised"),
            # hostile: the library's sampler through an alias
            ("import lib.subsets as S\n"
             "_f = getattr(S, 'ksubset_' + 'sample')\n"
             "def sample_subset(logits, k, n_samples):\n"
             "    return _f(logits, k, n_samples)\n", "not allowed"),
            # hostile: the grader's own marginals, as independent coins rounded to k
            ("from lib.grading.sets import subsets as _g\n"
             "def sample_subset(logits, k, n_samples):\n"
             "    mu = torch.tensor(_g.ksubset_marginals_reference(logits.numpy(), k))\n"
             "    idx = torch.multinomial(mu.expand(n_samples, -1), k)\n"
             "    return torch.zeros(n_samples, len(logits)).scatter(-1, idx, 1.0)\n",
             "not allowed"),
        ],
    },
    "q3": {
        "right": [
            # bisection in torch from the scores' range
            "def relaxed_topk(scores, k, tau):\n"
            "    lo = -scores.max() - 50 * tau\n"
            "    hi = -scores.min() + 50 * tau\n"
            "    for _ in range(100):\n"
            "        b = (lo + hi) / 2\n"
            "        if torch.sigmoid((scores + b) / tau).sum() > k:\n"
            "            hi = b\n"
            "        else:\n"
            "            lo = b\n"
            "    return torch.sigmoid((scores + (lo + hi) / 2) / tau)\n",
            # scipy's root finder on the sum, in NumPy
            "from scipy.optimize import brentq\n"
            "from scipy.special import expit\n"
            "def relaxed_topk(scores, k, tau):\n"
            "    s = np.asarray(scores, dtype=float)\n"
            "    f = lambda b: expit((s + b) / tau).sum() - k\n"
            "    b = brentq(f, -s.max() - 60 * tau, -s.min() + 60 * tau, xtol=1e-14)\n"
            "    return expit((s + b) / tau)\n",
        ],
        "wrong": [
            # the successive softmax
            ("def relaxed_topk(scores, k, tau):\n"
             "    y = torch.zeros_like(scores)\n"
             "    a = torch.zeros_like(scores)\n"
             "    s = scores\n"
             "    for _ in range(k):\n"
             "        s = s + torch.log((1 - a).clamp(min=1e-300))\n"
             "        a = torch.softmax(s / tau, 0)\n"
             "        y = y + a\n"
             "    return y\n", "successive softmax"),
            ("def relaxed_topk(scores, k, tau):\n"
             "    return k * torch.softmax(scores / tau, 0)\n", "k times a softmax"),
            # no threshold
            ("def relaxed_topk(scores, k, tau):\n"
             "    return torch.sigmoid(scores / tau)\n", "sums to"),
            # a sum normalised to k instead of a threshold
            ("def relaxed_topk(scores, k, tau):\n"
             "    y = torch.sigmoid(scores / tau)\n"
             "    return k * y / y.sum()\n", "outside [0, 1]"),
            # the Euclidean (clipped linear) relaxation instead of the entropic one
            ("def relaxed_topk(scores, k, tau):\n"
             "    lo, hi = -scores.max() - 50 * tau, -scores.min() + 50 * tau\n"
             "    for _ in range(100):\n"
             "        b = (lo + hi) / 2\n"
             "        if ((scores + b) / tau + 0.5).clamp(0, 1).sum() > k:\n"
             "            hi = b\n"
             "        else:\n"
             "            lo = b\n"
             "    return ((scores + (lo + hi) / 2) / tau + 0.5).clamp(0, 1)\n", "one threshold"),
            # no temperature
            ("def relaxed_topk(scores, k, tau):\n"
             "    lo, hi = -scores.max() - 50, -scores.min() + 50\n"
             "    for _ in range(100):\n"
             "        b = (lo + hi) / 2\n"
             "        if torch.sigmoid(scores + b).sum() > k:\n"
             "            hi = b\n"
             "        else:\n"
             "            lo = b\n"
             "    return torch.sigmoid(scores + (lo + hi) / 2)\n", "does not depend on tau"),
            # a fixed bracket that misses the threshold of shifted scores
            ("def relaxed_topk(scores, k, tau):\n"
             "    lo, hi = -10.0, 10.0\n"
             "    for _ in range(100):\n"
             "        b = (lo + hi) / 2\n"
             "        if torch.sigmoid((scores + b) / tau).sum() > k:\n"
             "            hi = b\n"
             "        else:\n"
             "            lo = b\n"
             "    return torch.sigmoid((scores + (lo + hi) / 2) / tau)\n", "bracket"),
            ("def relaxed_topk(scores, k, tau):\n"
             "    z = torch.zeros_like(scores)\n"
             "    z[scores.topk(k).indices] = 1.0\n"
             "    return z\n", "hard top-k"),
            # the sign of the scores flipped
            ("def relaxed_topk(scores, k, tau):\n"
             "    lo, hi = scores.min() - 50 * tau, scores.max() + 50 * tau\n"
             "    for _ in range(100):\n"
             "        b = (lo + hi) / 2\n"
             "        if torch.sigmoid((b - scores) / tau).sum() > k:\n"
             "            hi = b\n"
             "        else:\n"
             "            lo = b\n"
             "    return torch.sigmoid(((lo + hi) / 2 - scores) / tau)\n", "smallest"),
            # hostile: the library's relaxation through an alias
            ("import lib.subsets as S\n"
             "_f = getattr(S, 'relaxed_' + 'topk')\n"
             "def relaxed_topk(scores, k, tau):\n"
             "    return _f(scores, k, tau, noise=torch.zeros_like(scores), method='sigmoid')\n",
             "not allowed"),
            ("from lib.grading.sets import subsets as _g\n"
             "def relaxed_topk(scores, k, tau):\n"
             "    return _g.relaxed_topk_reference(scores.numpy(), k, tau)\n", "not allowed"),
            ("def relaxed_topk(scores, k, tau):\n    return scores[:k]\n", "shape"),
        ],
    },
}
