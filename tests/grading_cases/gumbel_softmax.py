"""Right and wrong answers for the exercise set "gumbel_softmax" (see __init__.py)."""

PREAMBLE = "import math\nimport numpy as np\nimport torch\nimport scipy.special\n"
SOFTMAX = "p = np.exp([2.0, 1.0, 0.0, -1.0]) / np.exp([2.0, 1.0, 0.0, -1.0]).sum()\n"

CASES = {
    "q1": {
        "right": [
            # torch, Gumbel noise through the exponential distribution (as torch does)
            "def gumbel_softmax(logits, tau):\n"
            "    # the noise as in torch.nn.functional.gumbel_softmax(logits, tau) (a comment)\n"
            "    g = -torch.empty_like(logits).exponential_().log()\n"
            "    return torch.softmax((logits + g) / tau, dim=-1)\n",
            # numpy Generator API, log-space normalisation
            "rng = np.random.default_rng(7)\n"
            "def gumbel_softmax(logits, tau):\n"
            "    x = np.asarray(logits)\n"
            "    z = (x + rng.gumbel(size=x.shape)) / tau\n"
            "    return np.exp(z - scipy.special.logsumexp(z, axis=1, keepdims=True))\n",
            # torch.distributions.Gumbel for the noise, float32, exp(log_softmax)
            "def gumbel_softmax(logits, tau):\n"
            "    g = torch.distributions.Gumbel(0.0, 1.0).sample(logits.shape)\n"
            "    return torch.log_softmax((logits.float() + g) / tau, -1).exp()\n",
        ],
        "wrong": [
            ("def gumbel_softmax(logits, tau):\n"
             "    g = -torch.log(-torch.log(torch.rand_like(logits)))\n"
             "    return torch.softmax(logits / tau + g, dim=-1)\n", "only the logits"),
            ("def gumbel_softmax(logits, tau):\n"
             "    g = -torch.log(-torch.log(torch.rand_like(logits)))\n"
             "    return torch.softmax(logits + g / tau, dim=-1)\n", "only the noise"),
            ("def gumbel_softmax(logits, tau):\n"
             "    g = -torch.log(-torch.log(torch.rand_like(logits)))\n"
             "    return torch.softmax((logits - g) / tau, dim=-1)\n", "not subtracted"),
            ("def gumbel_softmax(logits, tau):\n"
             "    g = -torch.log(-torch.log(torch.rand_like(logits)))\n"
             "    return torch.softmax((logits + g) / tau, dim=0)\n", "wrong dimension"),
            ("def gumbel_softmax(logits, tau):\n"
             "    g = -torch.log(-torch.log(torch.rand_like(logits)))\n"
             "    i = (logits + g).argmax(-1)\n"
             "    return torch.nn.functional.one_hot(i, logits.shape[-1]).double()\n",
             "one-hot"),
            ("def gumbel_softmax(logits, tau):\n"
             "    g = -torch.log(-torch.log(torch.rand_like(logits)))\n"
             "    return torch.softmax(logits + g, dim=-1)\n", "ignores tau"),
            ("def gumbel_softmax(logits, tau):\n"
             "    g = -torch.log(-torch.log(torch.rand_like(logits)))\n"
             "    return torch.softmax((logits + g) * tau, dim=-1)\n", "multiplied by tau"),
            ("def gumbel_softmax(logits, tau):\n"
             "    g = -torch.log(-torch.log(torch.rand(logits.shape[-1])))\n"
             "    return torch.softmax((logits + g) / tau, dim=-1)\n", "fresh"),
            ("def gumbel_softmax(logits, tau):\n"
             "    g = torch.rand_like(logits)\n"
             "    return torch.softmax((logits + g) / tau, dim=-1)\n", "standard gumbel"),
            ("def gumbel_softmax(logits, tau):\n"
             "    g = -torch.log(-torch.log(torch.rand_like(logits)))\n"
             "    return torch.softmax(logits + g, dim=-1) / tau\n", "outside the softmax"),
            ("def gumbel_softmax(logits, tau):\n"
             "    return torch.nn.functional.gumbel_softmax(logits, tau=tau)\n", "library"),
            # the same through an alias defined outside the function (issue 14)
            ("_gs = getattr(torch.nn.functional, 'gumbel_' + 'softmax')\n"
             "def gumbel_softmax(logits, tau):\n"
             "    return _gs(logits, tau=tau)\n", "not allowed"),
            ("def gumbel_softmax(logits, tau):\n"
             "    g = -torch.log(-torch.log(torch.rand(logits.shape[0], 1)))\n"
             "    return torch.softmax((logits + g) / tau, dim=-1)\n", "shared by all categories"),
        ],
    },
    "q2": {
        "right": [
            # numpy Gumbel-max on the scaled logits
            "rng = np.random.default_rng(3)\n"
            "def tempered_frequencies(logits, tau, n_samples):\n"
            "    x = np.asarray(logits)\n"
            "    z = np.argmax(x / tau + rng.gumbel(size=(n_samples, x.size)), axis=1)\n"
            "    return np.bincount(z, minlength=x.size) / n_samples\n",
            # torch: argmax(x + tau * G), the overflow-free form
            "def tempered_frequencies(logits, tau, n_samples):\n"
            "    g = -torch.log(-torch.log(torch.rand(n_samples, logits.numel(),\n"
            "                                        dtype=torch.float64)))\n"
            "    z = (logits + tau * g).argmax(-1)\n"
            "    return torch.bincount(z, minlength=logits.numel()).double() / n_samples\n",
            # any exact sampler of softmax(x / tau) is accepted
            "def tempered_frequencies(logits, tau, n_samples):\n"
            "    p = torch.softmax(logits / tau, -1)\n"
            "    z = torch.multinomial(p, n_samples, replacement=True)\n"
            "    return torch.bincount(z, minlength=p.numel()) / n_samples\n",
        ],
        "wrong": [
            ("def tempered_frequencies(logits, tau, n_samples):\n"
             "    g = -torch.log(-torch.log(torch.rand(n_samples, logits.numel(),\n"
             "                                        dtype=torch.float64)))\n"
             "    y = torch.softmax((logits + g) / tau, -1)\n"
             "    return torch.bincount(y.argmax(-1), minlength=logits.numel()) / n_samples\n",
             "do not depend on tau"),
            ("def tempered_frequencies(logits, tau, n_samples):\n"
             "    return torch.softmax(logits / tau, -1)\n", "exact probabilities"),
            ("def tempered_frequencies(logits, tau, n_samples):\n"
             "    g = -torch.log(-torch.log(torch.rand(n_samples, logits.numel(),\n"
             "                                        dtype=torch.float64)))\n"
             "    return torch.softmax((logits + g) / tau, -1).mean(0)\n", "relaxed"),
            ("def tempered_frequencies(logits, tau, n_samples):\n"
             "    g = np.random.gumbel(size=(n_samples, len(logits)))\n"
             "    z = np.argmax(np.asarray(logits) / tau + g, axis=1)\n"
             "    return np.bincount(z, minlength=len(logits))\n", "counts"),
            ("def tempered_frequencies(logits, tau, n_samples):\n"
             "    g = np.random.gumbel(size=(n_samples, len(logits)))\n"
             "    z = np.argmax(np.asarray(logits) + g / tau, axis=1)\n"
             "    return np.bincount(z, minlength=len(logits)) / n_samples\n",
             "wrong way round"),
            ("def tempered_frequencies(logits, tau, n_samples):\n"
             "    g = np.random.gumbel(size=(n_samples, len(logits)))\n"
             "    z = np.argmax(np.asarray(logits) / tau + g, axis=0)\n"
             "    return np.bincount(z, minlength=len(logits)) / n_samples\n", "shape"),
            ("from lib.relaxed import tempered_sample\n"
             "def tempered_frequencies(logits, tau, n_samples):\n"
             "    z = tempered_sample(logits.expand(n_samples, -1), tau)\n"
             "    return torch.bincount(z, minlength=logits.numel()) / n_samples\n",
             "tempered_sample"),
        ],
    },
    "q3": {
        "right": [
            "tempered_low = np.array([1.0, 0.0, 0.0, 0.0])\n"
            "argmax_high = np.exp([2.0, 1.0, 0.0, -1.0]) / np.exp([2.0, 1.0, 0.0, -1.0]).sum()\n"
            "mean_low = argmax_high\n"
            "mean_high = np.full(4, 0.25)\n",
            # computed with torch, the mean limits estimated by Monte Carlo
            "x = torch.tensor([2.0, 1.0, 0.0, -1.0], dtype=torch.float64)\n"
            "torch.manual_seed(0)\n"
            "g = -torch.log(-torch.log(torch.rand(200_000, 4, dtype=torch.float64)))\n"
            "tempered_low = torch.softmax(x / 1e-4, -1)\n"
            "argmax_high = torch.softmax(x, -1)\n"
            "mean_low = torch.softmax((x + g) / 1e-3, -1).mean(0)\n"
            "mean_high = torch.softmax((x + g) / 1e4, -1).mean(0)\n",
        ],
        "wrong": [
            (SOFTMAX + "tempered_low = p\nargmax_high = p\nmean_low = p\n"
             "mean_high = np.full(4, 0.25)\n", "distribution at tau = 1"),
            (SOFTMAX + "tempered_low = np.array([1.0, 0.0, 0.0, 0.0])\n"
             "argmax_high = np.full(4, 0.25)\nmean_low = p\nmean_high = np.full(4, 0.25)\n",
             "does not change which entry is largest"),
            (SOFTMAX + "tempered_low = np.array([1.0, 0.0, 0.0, 0.0])\nargmax_high = p\n"
             "mean_low = np.array([1.0, 0.0, 0.0, 0.0])\nmean_high = np.full(4, 0.25)\n",
             "tempered categorical"),
            (SOFTMAX + "tempered_low = np.array([1.0, 0.0, 0.0, 0.0])\nargmax_high = p\n"
             "mean_low = p\nmean_high = p\n", "fixed vector"),
            (SOFTMAX + "tempered_low = np.array([1.0, 0.0, 0.0, 0.0])\n"
             "argmax_high = np.array([0.4, 0.3, 0.2, 0.1])\nmean_low = p\n"
             "mean_high = np.full(4, 0.25)\n", "none of"),
            ("tempered_low = 0\nargmax_high = 0\nmean_low = 0\nmean_high = 0\n", "shape"),
        ],
    },
    "q4": {
        "right": [
            # torch, log space
            "def concrete_log_prob(y, logits, tau):\n"
            "    k = y.numel()\n"
            "    return (math.lgamma(k) + (k - 1) * math.log(tau)\n"
            "            + (logits - (tau + 1) * y.log()).sum()\n"
            "            - k * torch.logsumexp(logits - tau * y.log(), 0))\n",
            # numpy/scipy, the product form of the paper, computed directly
            "def concrete_log_prob(y, logits, tau):\n"
            "    y, a = np.asarray(y), np.exp(np.asarray(logits))\n"
            "    k = len(y)\n"
            "    terms = a * y ** (-tau - 1) / np.sum(a * y ** (-tau))\n"
            "    return float(np.log(math.factorial(k - 1) * tau ** (k - 1) * np.prod(terms)))\n",
        ],
        "wrong": [
            ("def concrete_log_prob(y, logits, tau):\n"
             "    k = y.numel()\n"
             "    return ((k - 1) * math.log(tau) + (logits - (tau + 1) * y.log()).sum()\n"
             "            - k * torch.logsumexp(logits - tau * y.log(), 0))\n", "(K-1)!"),
            ("def concrete_log_prob(y, logits, tau):\n"
             "    k = y.numel()\n"
             "    return (math.lgamma(k) + k * math.log(tau)\n"
             "            + (logits - (tau + 1) * y.log()).sum()\n"
             "            - k * torch.logsumexp(logits - tau * y.log(), 0))\n", "power of tau"),
            ("def concrete_log_prob(y, logits, tau):\n"
             "    k = y.numel()\n"
             "    return (math.lgamma(k) + (k - 1) * math.log(tau)\n"
             "            + (logits - tau * y.log()).sum()\n"
             "            - k * torch.logsumexp(logits - tau * y.log(), 0))\n", "exponent of y_k"),
            ("def concrete_log_prob(y, logits, tau):\n"
             "    k = y.numel()\n"
             "    return (math.lgamma(k) + (k - 1) * math.log(tau)\n"
             "            + (logits - (tau + 1) * y.log()).sum()\n"
             "            - torch.logsumexp(logits - tau * y.log(), 0))\n", "K times"),
            ("def concrete_log_prob(y, logits, tau):\n"
             "    k = y.numel()\n"
             "    return torch.exp(math.lgamma(k) + (k - 1) * math.log(tau)\n"
             "            + (logits - (tau + 1) * y.log()).sum()\n"
             "            - k * torch.logsumexp(logits - tau * y.log(), 0))\n", "logarithm"),
            ("def concrete_log_prob(y, logits, tau):\n"
             "    k = y.numel()\n"
             "    return -(math.lgamma(k) + (k - 1) * math.log(tau)\n"
             "            + (logits - (tau + 1) * y.log()).sum()\n"
             "            - k * torch.logsumexp(logits - tau * y.log(), 0))\n", "sign"),
            ("def concrete_log_prob(y, logits, tau):\n"
             "    d = torch.distributions.RelaxedOneHotCategorical(torch.tensor(tau),\n"
             "                                                      logits=logits)\n"
             "    return d.log_prob(y)\n", "library"),
            ("def concrete_log_prob(y, logits, tau):\n"
             "    return math.lgamma(y.numel()) + (logits - (tau + 1) * y.log())\n",
             "one log-density"),
        ],
    },
}
