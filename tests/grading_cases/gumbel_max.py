PREAMBLE = "import numpy as np\nimport torch\n"

CASES = {
    "q1": {
        "right": [
            # torch, with a clamp instead of an open interval
            "def sample_gumbel(n):\n"
            "    u = torch.rand(n, dtype=torch.float64).clamp(1e-12, 1 - 1e-12)\n"
            "    return -torch.log(-torch.log(u))\n",
            # numpy Generator API, the log1p form of the same inverse CDF
            "rng = np.random.default_rng(5)\n"
            "def sample_gumbel(n):\n"
            "    u = 1.0 - rng.random(n)  # (0, 1]\n"
            "    u = np.where(u == 1.0, 0.5, u)\n"
            "    return -np.log(-np.log(u))\n",
            # issue 14: docstrings, comments and the student's own names never matter
            'def sample_gumbel(n):\n'
            '    """Like np.random.gumbel(size=n) or scipy.stats.gumbel_r, by inverse CDF."""\n'
            '    # not Gumbel(...) from torch: U -> -log(-log U)\n'
            '    return -np.log(-np.log(np.random.uniform(1e-300, 1.0, n)))\n',
            "def gumbel_softmax(u):  # a helper with a library's name\n"
            "    return -np.log(-np.log(u))\n"
            "def sample_gumbel(n):\n"
            "    return gumbel_softmax(np.random.uniform(1e-300, 1.0, n))\n",
        ],
        "wrong": [
            ("def sample_gumbel(n):\n    return -np.log(np.random.rand(n))\n", "one of the two"),
            # issue 14: bans hold however the library sampler is reached
            ("_g = np.random.gumbel\ndef sample_gumbel(n):\n    return _g(size=n)\n",
             "not allowed"),
            ("def sample_gumbel(n):\n    return getattr(np.random, 'gum' + 'bel')(size=n)\n",
             "not allowed"),
            ("rng = np.random.default_rng(1)\ndef _helper(n):\n    return rng.gumbel(size=n)\n"
             "def sample_gumbel(n):\n    return _helper(n)\n", "not allowed"),
            ("import scipy.stats as st\ndef sample_gumbel(n):\n"
             "    try:\n        return st.gumbel_r.rvs(size=n)\n"
             "    except Exception:\n        return np.random.gumbel(size=n)\n", "not allowed"),
            ("def sample_gumbel(n):\n    return np.full(n, 0.5772)\n", "are equal"),
            ("def sample_gumbel(n):\n    return np.log(-np.log(np.random.rand(n)))\n",
             "mirrored"),
            ("def sample_gumbel(n):\n    return np.random.rand(n)\n", "uniform"),
            ("def sample_gumbel(n):\n    return np.random.gumbel(size=n)\n", "library"),
            ("def sample_gumbel(n):\n    return -np.log(-np.log(np.random.rand(n))) + 1\n",
             "location"),
            ("def sample_gumbel(n):\n    return -np.log(-np.log(np.random.rand(n, 2)))\n",
             "shape"),
            ("def sample_gumbel(n):\n    -np.log(-np.log(np.random.rand(n)))\n", "return"),
            ("def sample_gumbel(n):\n    return -np.log(-np.log(np.random.rand(n) - 0.5))\n",
             "NaN"),
        ],
    },
}

# ---------------------------------------------------------------------------------- q2
CASES["q2"] = {
    "right": [
        # torch, inverse CDF written inline, float64
        "def gumbel_max_sample(logits, n_samples):\n"
        "    x = torch.as_tensor(logits, dtype=torch.float64)\n"
        "    u = torch.rand(n_samples, x.numel(), dtype=torch.float64).clamp_min(1e-300)\n"
        "    return torch.argmax(x - torch.log(-torch.log(u)), dim=-1)\n",
        # exponential form: argmax(x - log E) with E ~ Exponential(1), one sample at a time
        "def gumbel_max_sample(logits, n_samples):\n"
        "    out = []\n"
        "    for _ in range(n_samples):\n"
        "        e = np.random.exponential(size=len(logits))\n"
        "        out.append(int(np.argmax(logits - np.log(e))))\n"
        "    return np.array(out)\n",
    ],
    "wrong": [
        ("def gumbel_max_sample(logits, n_samples):\n"
         "    u = np.random.rand(n_samples, len(logits))\n"
         "    return np.argmax(logits + u, axis=1)\n", "noise is too small"),
        ("def gumbel_max_sample(logits, n_samples):\n"
         "    g = np.random.gumbel(size=len(logits))\n"
         "    return np.full(n_samples, np.argmax(logits + g))\n", "same noise"),
        ("def gumbel_max_sample(logits, n_samples):\n"
         "    p = np.exp(logits - logits.max()); p = p / p.sum()\n"
         "    return np.argmax(p + np.random.gumbel(size=(n_samples, len(p))), axis=1)\n",
         "not to probabilities"),
        ("def gumbel_max_sample(logits, n_samples):\n"
         "    p = np.exp(logits) / np.exp(logits).sum()\n"
         "    g = np.random.gumbel(size=(n_samples, len(p)))\n"
         "    return np.argmax(np.log(p) + g, axis=1)\n", "overflows"),
        ("def gumbel_max_sample(logits, n_samples):\n"
         "    g = np.random.gumbel(size=(n_samples, len(logits)))\n"
         "    return np.argmin(logits + g, axis=1)\n", "argmin"),
        ("def gumbel_max_sample(logits, n_samples):\n"
         "    g = np.random.gumbel(size=(n_samples, len(logits)))\n"
         "    return np.argmax(logits + g, axis=0)\n", "categories axis"),
        ("def gumbel_max_sample(logits, n_samples):\n"
         "    p = np.exp(logits - logits.max())\n"
         "    return np.random.choice(len(p), size=n_samples, p=p / p.sum())\n", "library"),
        ("def gumbel_max_sample(logits, n_samples):\n"
         "    g = np.random.gumbel(size=(n_samples, len(logits)))\n"
         "    return (logits + g).max(axis=1)\n", "whole numbers"),
    ],
}

# ---------------------------------------------------------------------------------- q3
CASES["q3"] = {
    "right": [
        # torch counts, p-value from the regularised upper incomplete gamma function
        "from scipy.special import gammaincc\n"
        "def chi_square_pvalue(samples, probs):\n"
        "    s = torch.as_tensor(samples)\n"
        "    observed = torch.bincount(s, minlength=len(probs)).double()\n"
        "    expected = observed.sum() * torch.as_tensor(probs, dtype=torch.float64)\n"
        "    stat = ((observed - expected) ** 2 / expected).sum().item()\n"
        "    return gammaincc((len(probs) - 1) / 2, stat / 2)\n",
        # counting with a loop, p-value with scipy.stats.chi2.sf
        "from scipy import stats\n"
        "def chi_square_pvalue(samples, probs):\n"
        "    counts = [0] * len(probs)\n"
        "    for s in samples:\n"
        "        counts[int(s)] += 1\n"
        "    n = len(samples)\n"
        "    stat = sum((c - n * p) ** 2 / (n * p) for c, p in zip(counts, probs))\n"
        "    return stats.chi2.sf(stat, df=len(probs) - 1)\n",
    ],
    "wrong": [
        ("from scipy import stats\n"
         "def chi_square_pvalue(samples, probs):\n"
         "    o = np.bincount(samples, minlength=len(probs)); e = len(samples) * probs\n"
         "    return stats.chi2.sf(((o - e) ** 2 / e).sum(), df=len(probs))\n",
         "degrees of freedom"),
        ("from scipy import stats\n"
         "def chi_square_pvalue(samples, probs):\n"
         "    o = np.bincount(samples, minlength=len(probs)); e = len(samples) * probs\n"
         "    return stats.chi2.cdf(((o - e) ** 2 / e).sum(), df=len(probs) - 1)\n",
         "survival function"),
        ("from scipy import stats\n"
         "def chi_square_pvalue(samples, probs):\n"
         "    f = np.bincount(samples, minlength=len(probs)) / len(samples)\n"
         "    return stats.chi2.sf(((f - probs) ** 2 / probs).sum(), df=len(probs) - 1)\n",
         "frequencies"),
        ("from scipy import stats\n"
         "def chi_square_pvalue(samples, probs):\n"
         "    _, o = np.unique(samples, return_counts=True); e = len(samples) * probs\n"
         "    return stats.chi2.sf(((o - e) ** 2 / e).sum(), df=len(probs) - 1)\n",
         "observed count 0"),
        ("def chi_square_pvalue(samples, probs):\n"
         "    o = np.bincount(samples, minlength=len(probs)); e = len(samples) * probs\n"
         "    return ((o - e) ** 2 / e).sum()\n", "not a probability"),
        ("from scipy import stats\n"
         "def chi_square_pvalue(samples, probs):\n"
         "    o = np.bincount(samples, minlength=len(probs))\n"
         "    return stats.chisquare(o, len(samples) * probs).pvalue\n", "library"),
        ("from scipy import stats\n"
         "def chi_square_pvalue(samples, probs):\n"
         "    o = np.bincount(samples, minlength=len(probs)); e = len(samples) * probs\n"
         "    return stats.chi2.sf(((o - e) ** 2 / o).sum(), df=len(probs) - 1)\n",
         "observed counts"),
    ],
}

# ---------------------------------------------------------------------------------- q4
CASES["q4"] = {
    "right": [
        # math.exp with a guard for the far left tail
        "import math\n"
        "def gumbel_density(g, loc):\n"
        "    z = g - loc\n"
        "    return 0.0 if z < -700 else math.exp(-z - math.exp(-z))\n",
        "def gumbel_density(g, loc):\n"
        "    z = torch.as_tensor(g - loc, dtype=torch.float64)\n"
        "    return torch.exp(-z - torch.exp(-z))\n",
    ],
    "wrong": [
        ("def gumbel_density(g, loc):\n    return np.exp(-np.exp(-(g - loc)))\n", "CDF"),
        ("def gumbel_density(g, loc):\n    return np.exp(-(g - loc))\n", "chain rule"),
        ("def gumbel_density(g, loc):\n    z = g - loc\n    return np.exp(z - np.exp(z))\n",
         "mirrored"),
        ("def gumbel_density(g, loc):\n    return np.exp(-g - np.exp(-g))\n",
         "ignores the location"),
        ("def gumbel_density(g, loc):\n    z = g + loc\n    return np.exp(-z - np.exp(-z))\n",
         "wrong direction"),
        ("def gumbel_density(g, loc):\n    z = g - loc\n"
         "    return np.exp(-z) * np.exp(-np.exp(-z))\n", "overflows to inf"),
        ("import math\ndef gumbel_density(g, loc):\n    z = g - loc\n"
         "    return math.exp(-z - math.exp(-z))\n", "OverflowError"),
        ("from scipy import stats\ndef gumbel_density(g, loc):\n"
         "    return stats.gumbel_r.pdf(g, loc=loc)\n", "library"),
        ("from scipy import stats\n_pdf = stats.gumbel_r(loc=0).pdf\n"
         "def gumbel_density(g, loc):\n    return _pdf(g - loc)\n", "not allowed"),
    ],
}
# issue 14: the prompt's own docstring was read as "calls a library Gumbel density"
CASES["q4"]["right"].append(
    'def gumbel_density(g, loc):\n'
    '    """The density of Gumbel(loc, 1) at g."""\n'
    '    z = g - loc\n'
    '    with np.errstate(over="ignore"):\n'
    '        return np.exp(-z - np.exp(-z))\n')

# ---------------------------------------------------------------------------------- q5
CASES["q5"] = {
    "right": [
        "def prob_others_below(g, logits, i):\n"
        "    others = np.delete(np.asarray(logits, dtype=float), i)\n"
        "    return np.exp(-np.sum(np.exp(others - g)))\n",
        "import math\n"
        "def prob_others_below(g, logits, i):\n"
        "    p = 1.0\n"
        "    for j, x in enumerate(logits):\n"
        "        if j != i:\n"
        "            p *= math.exp(-math.exp(-(g - x)))\n"
        "    return p\n",
    ],
    "wrong": [
        ("def prob_others_below(g, logits, i):\n"
         "    return np.prod(np.exp(-np.exp(-(g - logits))))\n", "including i"),
        ("def prob_others_below(g, logits, i):\n"
         "    others = np.delete(logits, i)\n"
         "    return np.prod(1 - np.exp(-np.exp(-(g - others))))\n", "above"),
        ("def prob_others_below(g, logits, i):\n"
         "    others = np.delete(logits, i)\n"
         "    return np.sum(np.exp(-np.exp(-(g - others))))\n", "multiply"),
        ("def prob_others_below(g, logits, i):\n"
         "    z = g - np.delete(logits, i)\n"
         "    return np.prod(np.exp(-z - np.exp(-z)))\n", "densities"),
    ],
}

# ---------------------------------------------------------------------------------- q6
Q6_HELPERS = (
    "def _density(g, loc):\n"
    "    z = g - loc\n"
    "    return np.exp(-z - np.exp(-z))\n"
    "def _below(g, logits, i):\n"
    "    return np.exp(-np.sum(np.exp(np.delete(logits, i) - g)))\n"
)
CASES["q6"] = {
    "right": [
        # quad on (-inf, inf) with the step-(a) and step-(b) functions
        Q6_HELPERS
        + "from scipy.integrate import quad\n"
        "def prob_argmax(logits, i):\n"
        "    f = lambda g: _density(g, logits[i]) * _below(g, logits, i)\n"
        "    return quad(f, -np.inf, np.inf)[0]\n",
        # trapezoid rule on a wide, fine grid around the logits
        Q6_HELPERS
        + "from scipy.integrate import trapezoid\n"
        "def prob_argmax(logits, i):\n"
        "    g = np.linspace(min(logits) - 10, max(logits) + 40, 200_001)\n"
        "    z = g - logits[i]\n"
        "    others = np.delete(logits, i)\n"
        "    below = np.exp(-np.exp(others[:, None] - g[None, :]).sum(0))\n"
        "    return trapezoid(np.exp(-z - np.exp(-z)) * below, g)\n",
    ],
    "wrong": [
        ("def prob_argmax(logits, i):\n"
         "    return np.exp(logits[i]) / np.exp(logits).sum()\n", "does not integrate"),
        # issue 14: a comment mentioning integration used to pass the source regex
        ("def prob_argmax(logits, i):  # no need to integrate (scipy.integrate.quad)\n"
         "    return np.exp(logits[i] - np.logaddexp.reduce(logits))\n", "does not integrate"),
        (Q6_HELPERS + "from scipy.integrate import quad\n"
         "def prob_argmax(logits, i):\n"
         "    f = lambda g: _density(g, logits[i]) * np.exp(-np.sum(np.exp(logits - g)))\n"
         "    return quad(f, -np.inf, np.inf)[0]\n", "includes category i itself"),
        (Q6_HELPERS + "from scipy.integrate import quad\n"
         "def prob_argmax(logits, i):\n"
         "    f = lambda g: _density(g, logits[i]) * _below(g, logits, i)\n"
         "    return quad(f, 0, np.inf)[0]\n", "whole real line"),
        ("from scipy.integrate import quad\n"
         "def prob_argmax(logits, i):\n"
         "    def f(g):\n"
         "        z = g - logits[i]\n"
         "        below = np.exp(-np.sum(np.exp(np.delete(logits, i) - g)))\n"
         "        return np.exp(-z) * np.exp(-np.exp(-z)) * below\n"
         "    return quad(f, -np.inf, np.inf)[0]\n", "inf * 0 = NaN"),
        (Q6_HELPERS + "from scipy.integrate import quad\n"
         "def prob_argmax(logits, i):\n"
         "    f = lambda g: _density(g, 0.0) * _below(g, logits, i)\n"
         "    return quad(f, -np.inf, np.inf)[0]\n", "centred"),
    ],
}

# issue 14: answers the source-reading check could not see integrate (functools.partial, exec)
CASES["q6"]["right"] += [
    Q6_HELPERS + "import functools\nfrom scipy import integrate\n"
    "def _p(logits, i, integrator):\n"
    "    f = lambda g: _density(g, logits[i]) * _below(g, logits, i)\n"
    "    return integrator(f, -np.inf, np.inf)[0]\n"
    "prob_argmax = functools.partial(_p, integrator=integrate.quad)\n",
    Q6_HELPERS + "import scipy.integrate as si\n"
    "exec('def prob_argmax(logits, i):\\n'\n"
    "     '    return si.quad(lambda g: _density(g, logits[i]) * _below(g, logits, i),'\n"
    "     ' -np.inf, np.inf)[0]\\n')\n",
]
