PREAMBLE = "import math\nimport numpy as np\nimport torch\nimport torch.nn.functional as F\n"

CASES = {
    "q1": {
        "right": [
            # log(1/K) written out, torch
            "def kl_to_uniform(logits):\n"
            "    log_q = torch.log_softmax(logits, dim=-1)\n"
            "    K = logits.shape[-1]\n"
            "    return (log_q.exp() * (log_q - math.log(1.0 / K))).sum(-1)\n",
            # NumPy, log K minus the entropy, logsumexp by hand
            "def kl_to_uniform(logits):\n"
            "    x = np.asarray(logits, dtype=np.float64)\n"
            "    m = x.max(-1, keepdims=True)\n"
            "    log_q = x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))\n"
            "    entropy = -(np.exp(log_q) * log_q).sum(-1)\n"
            "    return np.log(x.shape[-1]) - entropy\n",
            # xlogy keeps 0 log 0 = 0 even with a plain softmax
            "def kl_to_uniform(logits):\n"
            "    q = torch.softmax(logits.double(), -1)\n"
            "    return torch.special.xlogy(q, q).sum(-1) + math.log(logits.shape[-1])\n",
        ],
        "wrong": [
            ("def kl_to_uniform(logits):\n"
             "    log_q = torch.log_softmax(logits, -1)\n"
             "    K = logits.shape[-1]\n"
             "    return (log_q.exp() * (math.log(1 / K) - log_q)).sum(-1)\n", "sign"),
            ("def kl_to_uniform(logits):\n"
             "    log_q = torch.log_softmax(logits, -1)\n"
             "    K = logits.shape[-1]\n"
             "    return (log_q.exp() * (log_q + math.log(1 / K))).sum(-1)\n", "log(1/K)"),
            ("def kl_to_uniform(logits):\n"
             "    log_q = torch.log_softmax(logits, -1)\n"
             "    return (log_q.exp() * log_q).sum(-1)\n", "log K term"),
            ("def kl_to_uniform(logits):\n"
             "    q = torch.softmax(logits, -1)\n"
             "    return (q * torch.log(q)).sum(-1) + math.log(logits.shape[-1])\n",
             "log_softmax"),
            ("def kl_to_uniform(logits):\n"
             "    log_q = torch.log_softmax(logits, -1)\n"
             "    return (log_q.exp() * log_q).sum() + math.log(logits.shape[-1])\n", "shape"),
            ("def kl_to_uniform(logits):\n"
             "    log_q = torch.log_softmax(logits, -1)\n"
             "    return (log_q.exp() * log_q).sum(-1) + math.log(10)\n", "number of categories"),
            ("def kl_to_uniform(logits):\n"
             "    log_q = torch.log_softmax(logits, -1)\n"
             "    K = logits.shape[-1]\n"
             "    return (-math.log(K) - log_q).mean(-1)\n", "other direction"),
            ("def kl_to_uniform(logits):\n"
             "    q = torch.distributions.Categorical(logits=logits)\n"
             "    u = torch.distributions.Categorical(logits=torch.zeros_like(logits))\n"
             "    return torch.distributions.kl_divergence(q, u)\n", "library"),
            # the library KL through an alias (issue 14: regexes missed aliases)
            ("_kl = getattr(torch.distributions, 'kl_' + 'divergence')\n"
             "def kl_to_uniform(logits):\n"
             "    q = torch.distributions.Categorical(logits=logits)\n"
             "    u = torch.distributions.Categorical(logits=torch.zeros_like(logits))\n"
             "    return _kl(q, u)\n", "not allowed"),
        ],
    },
    "q2": {
        "right": [
            # torch.distributions, costs via torch.distributions.Bernoulli
            "def negative_elbo_discrete(model, x, n_samples):\n"
            "    logits = model.encode(x)\n"
            "    z = torch.distributions.OneHotCategorical(logits=logits).sample((n_samples,))\n"
            "    px = torch.distributions.Bernoulli(logits=model.decode(z))\n"
            "    cost = -px.log_prob(x.expand(n_samples, *x.shape)).sum(-1)\n"
            "    log_q = torch.log_softmax(logits, -1)\n"
            "    kl = (log_q.exp() * (log_q + math.log(logits.shape[-1]))).sum((-2, -1))\n"
            "    return (cost.mean(0) + kl).detach()\n",
            # Gumbel-max with NumPy noise, a loop over images, log(1/K) form, NumPy output
            "def negative_elbo_discrete(model, x, n_samples):\n"
            "    out = []\n"
            "    with torch.no_grad():\n"
            "        for image in x:\n"
            "            logits = model.encode(image[None])[0]  # [N, K]\n"
            "            K = logits.shape[-1]\n"
            "            g = torch.as_tensor(np.random.gumbel(size=(n_samples, *logits.shape)))\n"
            "            z = F.one_hot((logits + g).argmax(-1), K).to(x.dtype)\n"
            "            cost = F.binary_cross_entropy_with_logits(model.decode(z),\n"
            "                image.expand(n_samples, -1), reduction='none').sum(-1)\n"
            "            q = torch.softmax(logits, -1)\n"
            "            kl = (q * (torch.log_softmax(logits, -1) - math.log(1 / K))).sum()\n"
            "            out.append(float(cost.mean() + kl))\n"
            "    return np.array(out)\n",
        ],
        "wrong": [
            # relaxed codes at tau = 0.5: not discrete (issue 14: passed)
            ("def negative_elbo_discrete(model, x, n_samples):\n"
             "    logits = model.encode(x)\n"
             "    u = torch.rand(n_samples, *logits.shape, dtype=logits.dtype)\n"
             "    z = torch.softmax((logits - torch.log(-torch.log(u))) / 0.5, -1)\n"
             "    cost = F.binary_cross_entropy_with_logits(model.decode(z),\n"
             "        x.expand(n_samples, *x.shape), reduction='none').sum(-1)\n"
             "    log_q = torch.log_softmax(logits, -1)\n"
             "    kl = (log_q.exp() * (log_q + math.log(3))).sum((-2, -1))\n"
             "    return (cost.mean(0) + kl).detach()\n", "one-hot"),
            # relaxed codes at tau = 0.1: not discrete (issue 14: passed)
            ("def negative_elbo_discrete(model, x, n_samples):\n"
             "    logits = model.encode(x)\n"
             "    u = torch.rand(n_samples, *logits.shape, dtype=logits.dtype)\n"
             "    z = torch.softmax((logits - torch.log(-torch.log(u))) / 0.1, -1)\n"
             "    cost = F.binary_cross_entropy_with_logits(model.decode(z),\n"
             "        x.expand(n_samples, *x.shape), reduction='none').sum(-1)\n"
             "    log_q = torch.log_softmax(logits, -1)\n"
             "    kl = (log_q.exp() * (log_q + math.log(3))).sum((-2, -1))\n"
             "    return (cost.mean(0) + kl).detach()\n", "not one-hot"),
            ("def negative_elbo_discrete(model, x, n_samples):\n"
             "    logits = model.encode(x)\n"
             "    z = torch.distributions.OneHotCategorical(logits=logits).sample((n_samples,))\n"
             "    cost = F.binary_cross_entropy_with_logits(model.decode(z),\n"
             "        x.expand(n_samples, *x.shape), reduction='none').sum(-1)\n"
             "    return cost.mean(0).detach()\n", "KL term"),
            ("def negative_elbo_discrete(model, x, n_samples):\n"
             "    logits = model.encode(x)\n"
             "    z = F.one_hot(logits.argmax(-1), logits.shape[-1]).double()\n"
             "    cost = F.binary_cross_entropy_with_logits(model.decode(z), x,\n"
             "        reduction='none').sum(-1)\n"
             "    log_q = torch.log_softmax(logits, -1)\n"
             "    kl = (log_q.exp() * (log_q + math.log(3))).sum((-2, -1))\n"
             "    return (cost + kl).detach()\n", "most probable"),
            ("def negative_elbo_discrete(model, x, n_samples):\n"
             "    logits = model.encode(x)\n"
             "    q = torch.softmax(logits, -1)\n"
             "    cost = F.binary_cross_entropy_with_logits(model.decode(q), x,\n"
             "        reduction='none').sum(-1)\n"
             "    log_q = torch.log_softmax(logits, -1)\n"
             "    kl = (q * (log_q + math.log(3))).sum((-2, -1))\n"
             "    return (cost + kl).detach()\n", "probabilities"),
            ("def negative_elbo_discrete(model, x, n_samples):\n"
             "    logits = model.encode(x)\n"
             "    z = torch.distributions.OneHotCategorical(logits=logits).sample((n_samples,))\n"
             "    cost = F.binary_cross_entropy_with_logits(model.decode(z),\n"
             "        x.expand(n_samples, *x.shape), reduction='none').mean(-1)\n"
             "    log_q = torch.log_softmax(logits, -1)\n"
             "    kl = (log_q.exp() * (log_q + math.log(3))).sum((-2, -1))\n"
             "    return (cost.mean(0) + kl).detach()\n", "sum over its 64 pixels"),
            ("def negative_elbo_discrete(model, x, n_samples):\n"
             "    logits = model.encode(x)\n"
             "    z = torch.distributions.OneHotCategorical(logits=logits).sample((n_samples,))\n"
             "    cost = F.binary_cross_entropy_with_logits(model.decode(z),\n"
             "        x.expand(n_samples, *x.shape), reduction='none').sum(-1)\n"
             "    log_q = torch.log_softmax(logits, -1)\n"
             "    kl = (log_q.exp() * (log_q - math.log(3))).sum((-2, -1))\n"
             "    return (cost.mean(0) + kl).detach()\n", "log(1/K)"),
            ("def negative_elbo_discrete(model, x, n_samples):\n"
             "    logits = model.encode(x)\n"
             "    z = torch.distributions.OneHotCategorical(logits=logits).sample((n_samples,))\n"
             "    cost = F.binary_cross_entropy_with_logits(model.decode(z),\n"
             "        x.expand(n_samples, *x.shape), reduction='none').sum(-1)\n"
             "    log_q = torch.log_softmax(logits, -1)\n"
             "    kl = (log_q.exp() * (log_q + math.log(3))).sum((-2, -1))\n"
             "    return (cost.mean(0) + kl).mean().detach()\n", "one value per image"),
            ("def negative_elbo_discrete(model, x, n_samples):\n"
             "    logits = model.encode(x)\n"
             "    z = torch.distributions.OneHotCategorical(logits=logits).sample()\n"
             "    cost = F.binary_cross_entropy_with_logits(model.decode(z), x,\n"
             "        reduction='none').sum(-1)\n"
             "    log_q = torch.log_softmax(logits, -1)\n"
             "    kl = (log_q.exp() * (log_q + math.log(3))).sum((-2, -1))\n"
             "    return (cost + kl).detach()\n", "ONE sample"),
            ("def negative_elbo_discrete(model, x, n_samples):\n"
             "    logits = model.encode(x)\n"
             "    z = torch.distributions.OneHotCategorical(logits=logits).sample((n_samples,))\n"
             "    cost = F.binary_cross_entropy_with_logits(model.decode(z),\n"
             "        x.expand(n_samples, *x.shape), reduction='none').sum(-1)\n"
             "    log_q = torch.log_softmax(logits, -1)\n"
             "    kl = (log_q.exp() * (log_q + math.log(3))).sum((-2, -1))\n"
             "    return -(cost.mean(0) + kl).detach()\n", "NEGATIVE ELBO"),
            ("from lib.vae import discrete_negative_elbo\n"
             "def negative_elbo_discrete(model, x, n_samples):\n"
             "    return discrete_negative_elbo(model, x, n_samples=n_samples)\n", "library"),
        ],
    },
    "q3": {
        "right": [
            # the often-copied form, hard - soft.detach() + soft (one ulp from exact)
            "def st_gumbel_sample(logits, tau, gumbel_noise):\n"
            "    soft = torch.softmax((logits + gumbel_noise) / tau, dim=-1)\n"
            "    index = soft.argmax(-1, keepdim=True)\n"
            "    hard = torch.zeros_like(soft).scatter_(-1, index, 1.0)\n"
            "    return hard - soft.detach() + soft\n",
            # argmax of the perturbed logits, F.one_hot, the exact form
            "def st_gumbel_sample(logits, tau, gumbel_noise):\n"
            "    scores = logits + gumbel_noise\n"
            "    hard = F.one_hot(scores.argmax(-1), scores.shape[-1]).to(scores.dtype)\n"
            "    soft = (scores / tau).softmax(-1)\n"
            "    return hard + (soft - soft.detach())\n",
        ],
        "wrong": [
            ("def st_gumbel_sample(logits, tau, gumbel_noise):\n"
             "    return torch.softmax((logits + gumbel_noise) / tau, -1)\n", "relaxed sample"),
            ("def st_gumbel_sample(logits, tau, gumbel_noise):\n"
             "    soft = torch.softmax((logits + gumbel_noise) / tau, -1)\n"
             "    return F.one_hot(soft.argmax(-1), soft.shape[-1]).to(soft.dtype)\n",
             "no gradient"),
            ("def st_gumbel_sample(logits, tau, gumbel_noise):\n"
             "    soft = torch.softmax(logits / tau, -1)\n"
             "    hard = F.one_hot(logits.argmax(-1), logits.shape[-1]).to(soft.dtype)\n"
             "    return hard + soft - soft.detach()\n", "always the mode"),
            ("def st_gumbel_sample(logits, tau, gumbel_noise):\n"
             "    scores = logits + gumbel_noise\n"
             "    hard = F.one_hot(scores.argmax(-1), scores.shape[-1]).to(scores.dtype)\n"
             "    probs = torch.softmax(logits, -1)\n"
             "    return hard + probs - probs.detach()\n", "plain straight-through"),
            ("def st_gumbel_sample(logits, tau, gumbel_noise):\n"
             "    scores = logits + gumbel_noise\n"
             "    hard = F.one_hot(scores.argmax(-1), scores.shape[-1]).to(scores.dtype)\n"
             "    soft = torch.softmax(scores, -1)\n"
             "    return hard + soft - soft.detach()\n", "does not depend on tau"),
            ("def st_gumbel_sample(logits, tau, gumbel_noise):\n"
             "    scores = logits + gumbel_noise\n"
             "    hard = F.one_hot(scores.argmax(-1), scores.shape[-1]).to(scores.dtype)\n"
             "    soft = torch.softmax(scores / tau, -1)\n"
             "    return hard + soft.detach() - soft\n", "wrong sign"),
            ("def st_gumbel_sample(logits, tau, gumbel_noise):\n"
             "    hard = F.one_hot((logits + gumbel_noise).argmax(-1), logits.shape[-1]).double()\n"
             "    soft = torch.softmax(logits / tau + gumbel_noise, -1)\n"
             "    return hard + soft - soft.detach()\n", "divided by tau"),
            ("def st_gumbel_sample(logits, tau, gumbel_noise):\n"
             "    return F.gumbel_softmax(logits, tau=tau, hard=True)\n", "library"),
        ],
    },
}
