PREAMBLE = "import numpy as np\nimport torch\n"

CASES = {
    "q1": {
        "right": [
            # autograd on the closed-form expectation, returned as a tensor
            "def exact_gradient(mu, sigma, c):\n"
            "    p = torch.tensor([mu, sigma], dtype=torch.float64, requires_grad=True)\n"
            "    expected = (p[0] - c) ** 2 + p[1] ** 2\n"
            "    return torch.autograd.grad(expected, p)[0]\n",
            # numpy array, a list of floats
            "def exact_gradient(mu, sigma, c):\n"
            "    return np.array([2.0 * mu - 2.0 * c, 2.0 * sigma])\n",
        ],
        "wrong": [
            ("def exact_gradient(mu, sigma, c):\n    return 2 * (mu - c), 0.0\n", "Var(z)"),
            ("def exact_gradient(mu, sigma, c):\n    return 2 * (mu - c), 1.0\n", "variance"),
            ("def exact_gradient(mu, sigma, c):\n    return 2 * (c - mu), 2 * sigma\n",
             "wrong sign"),
            ("def exact_gradient(mu, sigma, c):\n    return 2 * sigma, 2 * (mu - c)\n",
             "wrong order"),
            ("def exact_gradient(mu, sigma, c):\n    return mu - c, sigma\n", "factor 2"),
            ("def exact_gradient(mu, sigma, c):\n    return 2 * (mu - c), 4 * sigma ** 3\n",
             "which power"),
            ("def exact_gradient(mu, sigma, c):\n    return 2 * (mu - c)\n", "shape"),
        ],
    },
    "q2": {
        "right": [
            # the per-sample gradients by hand (2(z - c), 2(z - c) eps), NumPy
            "def pathwise_gradient(mu, sigma, c, n_samples):\n"
            "    eps = np.random.standard_normal(n_samples)\n"
            "    z = mu + sigma * eps\n"
            "    return [np.mean(2 * (z - c)), np.mean(2 * (z - c) * eps)]\n",
            # torch.distributions rsample with float64 tensors
            "def pathwise_gradient(mu, sigma, c, n_samples):\n"
            "    mu = torch.tensor(mu, dtype=torch.float64, requires_grad=True)\n"
            "    sigma = torch.tensor(sigma, dtype=torch.float64, requires_grad=True)\n"
            "    z = torch.distributions.Normal(mu, sigma).rsample((n_samples,))\n"
            "    ((z - c) ** 2).mean().backward()\n"
            "    return torch.stack([mu.grad, sigma.grad])\n",
            # antithetic noise (eps, -eps): still unbiased, lower variance
            "def pathwise_gradient(mu, sigma, c, n_samples):\n"
            "    mu = torch.tensor(mu, requires_grad=True)\n"
            "    sigma = torch.tensor(sigma, requires_grad=True)\n"
            "    half = torch.randn((n_samples + 1) // 2)\n"
            "    eps = torch.cat([half, -half])[:n_samples] if n_samples > 1 else half\n"
            "    loss = ((mu + sigma * eps - c) ** 2).mean()\n"
            "    return torch.autograd.grad(loss, (mu, sigma))\n",
        ],
        "wrong": [
            # .sample() cuts the graph
            ("def pathwise_gradient(mu, sigma, c, n_samples):\n"
             "    mu = torch.tensor(mu, requires_grad=True)\n"
             "    sigma = torch.tensor(sigma, requires_grad=True)\n"
             "    z = torch.distributions.Normal(mu, sigma).sample((n_samples,))\n"
             "    ((z - c) ** 2).mean().backward()\n"
             "    return mu.grad, sigma.grad\n", "sample()"),
            # the exact answer instead of an estimate
            ("def pathwise_gradient(mu, sigma, c, n_samples):\n"
             "    return 2 * (mu - c), 2 * sigma\n", "same value on every call"),
            # one sample, whatever n_samples says
            ("def pathwise_gradient(mu, sigma, c, n_samples):\n"
             "    eps = np.random.standard_normal()\n"
             "    z = mu + sigma * eps\n"
             "    return 2 * (z - c), 2 * (z - c) * eps\n", "hardly changes"),
            # the variance used as the scale
            ("def pathwise_gradient(mu, sigma, c, n_samples):\n"
             "    mu = torch.tensor(mu, requires_grad=True)\n"
             "    sigma = torch.tensor(sigma, requires_grad=True)\n"
             "    z = mu + sigma ** 2 * torch.randn(n_samples)\n"
             "    return torch.autograd.grad(((z - c) ** 2).mean(), (mu, sigma))\n",
             "standard deviation"),
            # the score-function (REINFORCE) estimator
            ("def pathwise_gradient(mu, sigma, c, n_samples):\n"
             "    z = mu + sigma * np.random.standard_normal(n_samples)\n"
             "    loss = (z - c) ** 2\n"
             "    d_mu = loss * (z - mu) / sigma ** 2\n"
             "    d_sigma = loss * ((z - mu) ** 2 / sigma ** 3 - 1 / sigma)\n"
             "    return d_mu.mean(), d_sigma.mean()\n", "score-function"),
            # detached samples: zero gradient from a loss made differentiable by hand
            ("def pathwise_gradient(mu, sigma, c, n_samples):\n"
             "    mu = torch.tensor(mu, requires_grad=True)\n"
             "    sigma = torch.tensor(sigma, requires_grad=True)\n"
             "    z = (mu + sigma * torch.randn(n_samples)).detach()\n"
             "    loss = ((z - c) ** 2).mean() + 0 * (mu + sigma)\n"
             "    return torch.autograd.grad(loss, (mu, sigma))\n", "all zero"),
        ],
    },
    "q3": {
        "right": [
            # -log(U) with U kept away from 0, NumPy noise turned into a tensor
            "def sample_exponential(rate, n_samples):\n"
            "    u = torch.from_numpy(np.random.uniform(1e-12, 1.0, n_samples))\n"
            "    return -torch.log(u).to(rate.dtype) / rate\n",
            # a Uniform(0, 1).sample() for the noise is fine; log(1 - U) form; a docstring
            # that names the distribution
            "def sample_exponential(rate, n_samples):\n"
            "    '''Exponential(rate) samples, written as Exponential(1) noise / rate.'''\n"
            "    u = torch.distributions.Uniform(0.0, 1.0).sample((n_samples,))\n"
            "    return -torch.log(1 - u) / rate  # not torch.distributions.Exponential(rate)\n",
            # the inverse CDF written with the scale 1/rate
            "def sample_exponential(rate, n_samples):\n"
            "    scale = 1.0 / rate\n"
            "    u = 1.0 - torch.rand(n_samples, dtype=torch.float64)\n"
            "    return scale * (-u.log())\n",
        ],
        "wrong": [
            ("def sample_exponential(rate, n_samples):\n"
             "    return torch.distributions.Exponential(rate).sample((n_samples,))\n",
             "library"),
            ("def sample_exponential(rate, n_samples):\n"
             "    return torch.distributions.Exponential(rate).rsample((n_samples,))\n",
             "library"),
            # a module-level alias reached through getattr: seen by behaviour (issue 14)
            ("_draw = getattr(torch.Tensor, 'exponential' + '_')\n"
             "def sample_exponential(rate, n_samples):\n"
             "    e = _draw(torch.empty(n_samples, dtype=torch.float64))\n"
             "    return e / rate\n", "not allowed"),
            ("def sample_exponential(rate, n_samples):\n"
             "    return (-torch.log1p(-torch.rand(n_samples)) / rate).detach()\n",
             "no gradient"),
            ("def sample_exponential(rate, n_samples):\n"
             "    return -torch.log1p(-torch.rand(n_samples)) / rate.item()\n",
             "no gradient"),
            ("def sample_exponential(rate, n_samples):\n"
             "    return -np.log1p(-np.random.rand(n_samples)) / float(rate)\n",
             "torch tensor"),
            ("def sample_exponential(rate, n_samples):\n"
             "    return -torch.log1p(-torch.rand(n_samples)) * rate\n", "as the scale"),
            ("def sample_exponential(rate, n_samples):\n"
             "    return torch.log1p(-torch.rand(n_samples)) / rate\n", "negative"),
            ("def sample_exponential(rate, n_samples):\n"
             "    return -torch.log(torch.rand(n_samples)) / rate ** 2\n", "mean"),
            # right distribution, but the noise is made to depend on rate: wrong gradient
            ("def sample_exponential(rate, n_samples):\n"
             "    z = -torch.log1p(-torch.rand(n_samples)) / rate.detach()\n"
             "    return z + 0 * rate\n", "pathwise derivative"),
            ("def sample_exponential(rate, n_samples):\n"
             "    u = torch.zeros(n_samples).uniform_()\n"
             "    u[0] = 0.0\n"
             "    return -torch.log(u) / rate\n", "infinite"),
        ],
    },
    "q4": {
        "right": [
            # a loop over the edges, NumPy
            "def categorical_inverse_cdf(probs, u):\n"
            "    edges = np.cumsum(np.asarray(probs))\n"
            "    u = np.asarray(u)\n"
            "    out = np.zeros(len(u), dtype=int)\n"
            "    for e in edges[:-1]:\n"
            "        out += (u >= e)\n"
            "    return out\n",
            # searchsorted with the other side convention (differs only on the edges)
            "def categorical_inverse_cdf(probs, u):\n"
            "    edges = torch.cumsum(probs, 0)\n"
            "    return torch.searchsorted(edges, u).clamp(max=len(probs) - 1)\n",
        ],
        "wrong": [
            ("def categorical_inverse_cdf(probs, u):\n"
             "    return torch.searchsorted(torch.cumsum(probs, 0), u, right=True) + 1\n",
             "shifted by one"),
            ("def categorical_inverse_cdf(probs, u):\n"
             "    i = torch.searchsorted(torch.cumsum(probs, 0), u, right=True)\n"
             "    return len(probs) - 1 - i\n", "reverse"),
            ("def categorical_inverse_cdf(probs, u):\n"
             "    return (probs[None, :] < u[:, None]).sum(1)\n", "cumulative sums"),
            ("def categorical_inverse_cdf(probs, u):\n"
             "    return torch.multinomial(probs, len(u), replacement=True)\n",
             "deterministic"),
            ("def categorical_inverse_cdf(probs, u):\n"
             "    i = torch.searchsorted(torch.cumsum(probs, 0), u, right=True)\n"
             "    return torch.nn.functional.one_hot(i, len(probs))\n", "shape"),
            ("def categorical_inverse_cdf(probs, u):\n"
             "    edges = torch.cumsum(probs.flip(0), 0)\n"
             "    return torch.searchsorted(edges, u, right=True)\n", "indices are wrong"),
        ],
    },
}
