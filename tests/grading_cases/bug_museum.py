PREAMBLE = "import math\nimport numpy as np\nimport torch\nimport torch.nn.functional as F\n"

_ENC = "def encoder_logits(x, w_hidden, b_hidden, w_out, b_out, n_latents):\n"
_KL = "def kl_per_example(logits):\n"
_PL = "def policy_loss(logits, actions, rewards, baseline):\n"
_EMA = "def ema_advantages(rewards, baseline, decay):\n"
_ST = "def straight_through(soft):\n"
_SL = "def sample_latent(probs, tau):\n"
_T = "def temperatures(n_epochs, tau0, rate, tau_min):\n"

CASES = {
    "q1": {
        "right": [
            # F.linear with transposed weights, and normalised logits (log_softmax): the same
            # distribution, so the same logits up to a shift per variable
            _ENC + "    h = F.relu(F.linear(x, w_hidden.T, b_hidden))\n"
            "    logits = F.linear(h, w_out.T, b_out)\n"
            "    return torch.log_softmax(logits.view(x.shape[0], n_latents, -1), dim=-1)\n",
            # clamp for the hidden ReLU, torch.addmm, unflatten
            _ENC + "    h = (x @ w_hidden + b_hidden).clamp(min=0)\n"
            "    return torch.addmm(b_out, h, w_out).unflatten(-1, (n_latents, -1))\n",
        ],
        "wrong": [
            # the museum piece itself
            (_ENC + "    h = torch.relu(x @ w_hidden + b_hidden)\n"
             "    logits = torch.relu(h @ w_out + b_out)\n"
             "    return logits.reshape(x.shape[0], n_latents, -1)\n", "ReLU on the encoder"),
            # a half-fix: a smooth ReLU is still bounded below
            (_ENC + "    h = torch.relu(x @ w_hidden + b_hidden)\n"
             "    logits = F.softplus(h @ w_out + b_out)\n"
             "    return logits.reshape(x.shape[0], n_latents, -1)\n", "bounds it from below"),
            (_ENC + "    h = torch.relu(x @ w_hidden + b_hidden)\n"
             "    logits = F.elu(h @ w_out + b_out)\n"
             "    return logits.reshape(x.shape[0], n_latents, -1)\n", "bounds it from below"),
            # the other ReLU removed instead, or both
            (_ENC + "    h = x @ w_hidden + b_hidden\n"
             "    logits = h @ w_out + b_out\n"
             "    return logits.reshape(x.shape[0], n_latents, -1)\n", "hidden layer"),
            (_ENC + "    h = torch.relu(x @ w_hidden + b_hidden)\n"
             "    logits = torch.tanh(h @ w_out + b_out)\n"
             "    return logits.reshape(x.shape[0], n_latents, -1)\n", "bounds it from below"),
            (_ENC + "    h = torch.relu(x @ w_hidden + b_hidden)\n"
             "    logits = 2 * (h @ w_out + b_out)\n"
             "    return logits.reshape(x.shape[0], n_latents, -1)\n", "transforms its output"),
            (_ENC + "    h = torch.relu(x @ w_hidden + b_hidden)\n"
             "    logits = (h @ w_out + b_out).detach()\n"
             "    return logits.reshape(x.shape[0], n_latents, -1)\n", "no gradient"),
            (_ENC + "    h = torch.relu(x @ w_hidden + b_hidden)\n"
             "    return h @ w_out + b_out\n", "shape"),
            # hostile: the right values rebuilt outside autograd, with a fresh leaf's
            # requires_grad so that it looks trainable
            (_ENC + "    with torch.no_grad():\n"
             "        h = torch.relu(x @ w_hidden + b_hidden)\n"
             "        logits = (h @ w_out + b_out).reshape(x.shape[0], n_latents, -1)\n"
             "    return logits.clone().requires_grad_()\n", "no gradient"),
        ],
    },
    "q2": {
        "right": [
            # log K minus the entropy, with xlogy
            _KL + "    q = torch.softmax(logits, -1)\n"
            "    entropy = -torch.special.xlogy(q, q).sum(-1)\n"
            "    return (math.log(logits.shape[-1]) - entropy).sum(-1)\n",
            # the log-ratio to the prior, log(q * K), on log_softmax
            _KL + "    log_q = F.log_softmax(logits, dim=-1)\n"
            "    log_ratio = log_q + math.log(logits.size(-1))\n"
            "    return torch.einsum('bnk,bnk->b', log_q.exp(), log_ratio)\n",
        ],
        "wrong": [
            # the museum piece: the entropy (both bugs)
            (_KL + "    q = torch.softmax(logits, -1)\n"
             "    return -(q * torch.log(q + 1e-20)).sum((-1, -2))\n", "both bugs"),
            # half-fixes: one of the two bugs left
            (_KL + "    q = torch.softmax(logits, -1)\n"
             "    return (q * torch.log(q + 1e-20)).sum((-1, -2))\n", "log K of each latent"),
            (_KL + "    q = torch.softmax(logits, -1)\n"
             "    K = logits.shape[-1]\n"
             "    return (math.log(K) - (q * torch.log(q + 1e-20)).sum(-1)).sum(-1)\n",
             "wrong sign"),
            # dev4488/VAE_gumble_softmax#1: a minus in front of the whole KL
            (_KL + "    q = torch.softmax(logits, -1)\n"
             "    K = logits.shape[-1]\n"
             "    return -(q * torch.log(q * K + 1e-20)).sum((-1, -2))\n", "wrong sign"),
            # YongfeiYan/Gumbel_Softmax_VAE#1: 1/K not logged
            (_KL + "    q = torch.softmax(logits, -1)\n"
             "    K = logits.shape[-1]\n"
             "    return (q * (torch.log(q + 1e-20) - 1.0 / K)).sum((-1, -2))\n", "differs"),
            (_KL + "    q = torch.softmax(logits, -1)\n"
             "    K = logits.shape[-1]\n"
             "    return (q * (torch.log(q) + math.log(K))).mean(-1).sum(-1)\n", "average"),
            (_KL + "    log_q = torch.log_softmax(logits, -1)\n"
             "    K = logits.shape[-1]\n"
             "    return ((-math.log(K) - log_q) / K).sum((-1, -2))\n", "other direction"),
            (_KL + "    q = torch.softmax(logits, -1)\n"
             "    return (q * torch.log(q * logits.shape[-1])).sum(-1)\n", "shape"),
            # a library KL reached through an alias: seen by behaviour, not by its name
            ("import torch.distributions as D\n"
             "_kl = getattr(D, 'kl_' + 'divergence')\n"
             + _KL + "    K = logits.shape[-1]\n"
             "    q = D.Categorical(logits=logits)\n"
             "    u = D.Categorical(logits=torch.zeros_like(logits))\n"
             "    return _kl(q, u).sum(-1)\n", "not allowed"),
            # hostile: the right values from NumPy, wrapped in a tensor that requires grad
            (_KL + "    x = logits.detach().numpy()\n"
             "    log_q = x - np.log(np.exp(x).sum(-1, keepdims=True))\n"
             "    kl = (np.exp(log_q) * (log_q + np.log(x.shape[-1]))).sum((-1, -2))\n"
             "    return torch.tensor(kl, requires_grad=True)\n", "no gradient reaches"),
        ],
    },
    "q3": {
        "right": [
            # the advantage detached as a whole, Categorical.log_prob
            _PL + "    advantage = (rewards - baseline).detach()\n"
            "    log_p = torch.distributions.Categorical(logits=logits).log_prob(actions)\n"
            "    return -(advantage * log_p).mean()\n",
            # the baseline through NumPy, a gather by one-hot, a sum divided by B
            _PL + "    b = torch.as_tensor(baseline.detach().numpy())\n"
            "    onehot = F.one_hot(actions, logits.shape[-1]).to(logits.dtype)\n"
            "    log_p = (torch.log_softmax(logits, -1) * onehot).sum(-1)\n"
            "    return -((rewards - b) * log_p).sum() / len(actions)\n",
        ],
        "wrong": [
            # the museum piece (ChenRocks/fast_abs_rl#49)
            (_PL + "    log_p = torch.log_softmax(logits, -1).gather(-1, actions[:, None])[:, 0]\n"
             "    advantage = rewards - baseline\n"
             "    return -(advantage * log_p).mean()\n", "not detached"),
            # half-fix: the log-probabilities detached instead of the baseline
            (_PL + "    log_p = torch.log_softmax(logits, -1).gather(-1, actions[:, None])[:, 0]\n"
             "    advantage = rewards - baseline\n"
             "    return -(advantage * log_p.detach()).mean()\n", "not detached"),
            # everything detached: nothing is trained
            (_PL + "    log_p = torch.log_softmax(logits, -1).gather(-1, actions[:, None])[:, 0]\n"
             "    return -((rewards - baseline) * log_p).mean().detach()\n",
             "no gradient reaches the logits"),
            # the baseline dropped
            (_PL + "    log_p = torch.log_softmax(logits, -1).gather(-1, actions[:, None])[:, 0]\n"
             "    return -(rewards * log_p).mean()\n", "dropped the baseline"),
            (_PL + "    log_p = torch.log_softmax(logits, -1).gather(-1, actions[:, None])[:, 0]\n"
             "    return ((rewards - baseline.detach()) * log_p).mean()\n", "wrong sign"),
            (_PL + "    log_p = torch.log_softmax(logits, -1).gather(-1, actions[:, None])[:, 0]\n"
             "    return -((rewards - baseline.detach()) * log_p).sum()\n", "batch-size"),
        ],
    },
    "q4": {
        "right": [
            # plain floats for the state, the update written as a step towards the mean
            _EMA + "    b = float(baseline)\n"
            "    advantages = rewards - b\n"
            "    b += (1 - decay) * (float(rewards.mean()) - b)\n"
            "    return advantages, b\n",
            # torch.lerp
            _EMA + "    advantages = rewards - baseline\n"
            "    new = torch.lerp(torch.as_tensor(baseline, dtype=rewards.dtype), rewards.mean(),"
            " 1 - decay)\n"
            "    return advantages, new\n",
        ],
        "wrong": [
            # the museum piece (shibuiwilliam/ENAS-Keras#2)
            (_EMA + "    baseline = decay * baseline + (1 - decay) * rewards.mean()\n"
             "    return rewards - baseline, baseline\n", "updated with the current batch"),
            (_EMA + "    new = decay * rewards.mean() + (1 - decay) * baseline\n"
             "    return rewards - baseline, new\n", "swapped"),
            (_EMA + "    return rewards - baseline, baseline\n", "never moves"),
            # hostile: its own global running average instead of the baseline passed in
            ("_state = {'b': 0.0}\n"
             + _EMA + "    adv = rewards - _state['b']\n"
             "    _state['b'] = decay * _state['b'] + (1 - decay) * float(rewards.mean())\n"
             "    return adv, _state['b']\n", "with decay 0.5"),
            (_EMA + "    new = decay * baseline + (1 - decay) * rewards.mean()\n"
             "    return rewards - rewards.mean(), new\n", "moving average of the earlier"),
            # in-place edits of the caller's tensors (hostile to a grader that reuses them)
            (_EMA + "    new = decay * baseline + (1 - decay) * rewards.mean()\n"
             "    rewards.sub_(new)\n"
             "    return rewards, new\n", "updated with the current batch"),
        ],
    },
    "q5": {
        "right": [
            # the difference detached as one term; the hard sample by scatter
            _ST + "    hard = torch.zeros_like(soft).scatter_(-1, soft.argmax(-1, keepdim=True),"
            " 1.0)\n"
            "    return soft + (hard - soft).detach()\n",
            # a custom autograd function: one-hot forward, identity backward
            "class _ST(torch.autograd.Function):\n"
            "    @staticmethod\n"
            "    def forward(ctx, y):\n"
            "        return F.one_hot(y.argmax(-1), y.shape[-1]).to(y.dtype)\n"
            "    @staticmethod\n"
            "    def backward(ctx, g):\n"
            "        return g\n"
            + _ST + "    return _ST.apply(soft)\n",
        ],
        "wrong": [
            # the museum piece: forward right, gradient negated
            (_ST + "    hard = F.one_hot(soft.argmax(-1), soft.shape[-1]).to(soft.dtype)\n"
             "    return hard - soft + soft.detach()\n", "wrong sign"),
            # the detach moved to the hard term: the forward value is the soft sample
            (_ST + "    hard = F.one_hot(soft.argmax(-1), soft.shape[-1]).to(soft.dtype)\n"
             "    return soft - hard.detach() + hard\n", "relaxed sample itself"),
            (_ST + "    hard = F.one_hot(soft.argmax(-1), soft.shape[-1]).to(soft.dtype)\n"
             "    return hard - soft.detach() + soft.detach()\n", "no gradient"),
            (_ST + "    hard = F.one_hot(soft.argmax(-1), soft.shape[-1]).to(soft.dtype)\n"
             "    return soft.detach() - hard + soft\n", "not the one-hot"),
            # the relaxed sample's own softmax Jacobian instead of the identity
            (_ST + "    hard = F.one_hot(soft.argmax(-1), soft.shape[-1]).to(soft.dtype)\n"
             "    s = torch.softmax(soft, -1)\n"
             "    return hard - s.detach() + s\n", "not the identity"),
            # hostile: the one-hot sample as a new leaf that requires grad
            (_ST + "    idx = soft.detach().argmax(-1)\n"
             "    return F.one_hot(idx, soft.shape[-1]).to(soft.dtype).requires_grad_()\n",
             "no gradient"),
        ],
    },
    "q6": {
        "right": [
            # log-probabilities into F.gumbel_softmax
            _SL + "    return F.gumbel_softmax(probs.log(), tau=tau, hard=True)\n",
            # Gumbel-max by hand on log(probs), straight-through with the relaxed sample
            _SL + "    g = -torch.log(-torch.log(torch.rand_like(probs)))\n"
            "    soft = torch.softmax((torch.log(probs) + g) / tau, -1)\n"
            "    hard = F.one_hot(soft.argmax(-1), probs.shape[-1]).to(probs.dtype)\n"
            "    return hard + soft - soft.detach()\n",
            # sampled by torch.multinomial, gradient through the probabilities (ST)
            _SL + "    idx = torch.multinomial(probs.detach(), 1)[:, 0]\n"
            "    hard = F.one_hot(idx, probs.shape[-1]).to(probs.dtype)\n"
            "    return hard + probs - probs.detach()\n",
        ],
        "wrong": [
            # the museum piece (ericjang/gumbel-softmax#9)
            (_SL + "    return F.gumbel_softmax(probs, tau=tau, hard=True)\n", "softmax(probs)"),
            (_SL + "    return F.gumbel_softmax(torch.log(probs), tau=tau, hard=False)\n",
             "not one-hot"),
            (_SL + "    return F.gumbel_softmax(torch.log(probs), tau=tau, hard=True).detach()\n",
             "no (finite) gradient"),
            # the temperature applied to the logits of the categorical itself
            (_SL + "    return F.gumbel_softmax(torch.log(probs) / tau, tau=tau, hard=True)\n",
             "more than sampling noise"),
            # hostile: a deterministic low-discrepancy rule that matches the frequencies
            (_SL + "    n = probs.shape[0]\n"
             "    u = (torch.arange(n, dtype=probs.dtype) * 0.6180339887) % 1.0\n"
             "    idx = (probs.detach().cumsum(-1) < u[:, None]).sum(-1)\n"
             "    hard = F.one_hot(idx.clamp(max=probs.shape[1] - 1), probs.shape[1])\n"
             "    return hard.to(probs.dtype) + probs - probs.detach()\n", "not random"),
        ],
    },
    "q7": {
        "right": [
            # the closed form, in NumPy
            _T + "    e = np.arange(n_epochs)\n"
            "    return np.maximum(tau0 * np.exp(-rate * e), tau_min)\n",
            # a loop that decays by a constant factor per epoch (no compounding)
            _T + "    taus, tau = [], tau0\n"
            "    for _ in range(n_epochs):\n"
            "        taus.append(max(tau, tau_min))\n"
            "        tau *= math.exp(-rate)\n"
            "    return taus\n",
        ],
        "wrong": [
            # the museum piece (AntixK/PyTorch-VAE#79)
            (_T + "    taus, tau = [], tau0\n"
             "    for epoch in range(n_epochs):\n"
             "        taus.append(tau)\n"
             "        tau = max(tau * math.exp(-rate * epoch), tau_min)\n"
             "    return taus\n", "compounds"),
            (_T + "    taus, tau = [], tau0\n"
             "    for epoch in range(n_epochs):\n"
             "        tau = max(tau * math.exp(-rate * epoch), tau_min)\n"
             "        taus.append(tau)\n"
             "    return taus\n", "compounds"),
            (_T + "    taus, tau = [], tau0\n"
             "    for _ in range(n_epochs):\n"
             "        tau = max(tau * math.exp(-rate), tau_min)\n"
             "        taus.append(tau)\n"
             "    return taus\n", "one epoch ahead"),
            (_T + "    return [tau0 * math.exp(-rate * e) for e in range(n_epochs)]\n",
             "floor"),
            (_T + "    return [max(tau0 - rate * e, tau_min) for e in range(n_epochs)]\n",
             "is not"),
            (_T + "    return float('nan') * np.ones(n_epochs)\n", "nan"),
        ],
    },
}
