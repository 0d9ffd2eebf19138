PREAMBLE = "import math\nimport numpy as np\nimport torch\nimport torch.nn.functional as F\n"

# log p of each mask, per token (sum over the real tokens afterwards)
_LOG_P = "    log_p = samples * F.logsigmoid(logits) + (1 - samples) * F.logsigmoid(-logits)\n"

_PRF_SOLUTION_BODY = (
    "    s, t = selected & mask, truth & mask\n"
    "    tp, n_s, n_t = int((s & t).sum()), int(s.sum()), int(t.sum())\n"
)

CASES = {
    "q1": {
        "right": [
            # NumPy, with explicit 0/0 tests
            "def rationale_prf(selected, truth, mask):\n"
            "    s = selected.numpy() & mask.numpy()\n"
            "    t = truth.numpy() & mask.numpy()\n"
            "    tp = np.sum(s & t)\n"
            "    p = tp / s.sum() if s.sum() > 0 else 0.0\n"
            "    r = tp / t.sum() if t.sum() > 0 else 0.0\n"
            "    return p, r, (2 * p * r / (p + r) if p + r > 0 else 0.0)\n",
            # scikit-learn on the real tokens, returned as a tensor
            "from sklearn.metrics import precision_recall_fscore_support\n"
            "def rationale_prf(selected, truth, mask):\n"
            "    y_true = truth[mask].int().numpy()\n"
            "    y_pred = selected[mask].int().numpy()\n"
            "    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average='binary',\n"
            "                                                 zero_division=0)\n"
            "    return torch.tensor([p, r, f])\n",
            # F1 as 2 TP / (selected + true), which equals 2PR / (P + R)
            "def rationale_prf(selected, truth, mask):\n"
            + _PRF_SOLUTION_BODY +
            "    p = tp / max(n_s, 1)\n"
            "    r = tp / max(n_t, 1)\n"
            "    f = 2 * tp / (n_s + n_t) if n_s + n_t else 0.0\n"
            "    return [p, r, f]\n",
        ],
        "wrong": [
            ("def rationale_prf(selected, truth, mask):\n"
             "    tp = int((selected & truth).sum())\n"
             "    p = tp / max(int(selected.sum()), 1)\n"
             "    r = tp / max(int(truth.sum()), 1)\n"
             "    return p, r, (2 * p * r / (p + r) if p + r else 0.0)\n", "padding"),
            ("def rationale_prf(selected, truth, mask):\n"
             + _PRF_SOLUTION_BODY +
             "    r = tp / max(n_s, 1)\n"
             "    p = tp / max(n_t, 1)\n"
             "    return p, r, (2 * p * r / (p + r) if p + r else 0.0)\n", "swapped"),
            ("def rationale_prf(selected, truth, mask):\n"
             + _PRF_SOLUTION_BODY +
             "    p = tp / max(n_s, 1)\n"
             "    r = tp / max(n_t, 1)\n"
             "    return p, r, (p + r) / 2\n", "harmonic"),
            ("def rationale_prf(selected, truth, mask):\n"
             + _PRF_SOLUTION_BODY +
             "    p = tp / n_s if n_s else float('nan')\n"
             "    r = tp / n_t if n_t else float('nan')\n"
             "    return p, r, 2 * p * r / (p + r)\n", "0/0 counts as 0"),
            ("def rationale_prf(selected, truth, mask):\n"
             "    scores = []\n"
             "    for s, t, m in zip(selected, truth, mask):\n"
             "        s, t = s & m, t & m\n"
             "        tp = int((s & t).sum())\n"
             "        p = tp / int(s.sum()) if s.sum() else 0.0\n"
             "        r = tp / int(t.sum()) if t.sum() else 0.0\n"
             "        scores.append([p, r, 2 * p * r / (p + r) if p + r else 0.0])\n"
             "    return np.mean(scores, axis=0)\n", "pool the counts"),
            ("from lib.rationales import precision_recall_f1\n"
             "def rationale_prf(selected, truth, mask):\n"
             "    return precision_recall_f1(selected, truth, mask)\n", "lib.rationales"),
        ],
    },
    "q2": {
        "right": [
            # a loop over tokens, with the pair mask built from neighbouring validity
            "def rationale_penalty(z, mask, lambda1, lambda2):\n"
            "    m = mask.to(z.dtype)\n"
            "    zm = z * m\n"
            "    total = lambda1 * zm.sum(-1)\n"
            "    for t in range(1, z.shape[-1]):\n"
            "        both = m[..., t] * m[..., t - 1]\n"
            "        total = total + lambda2 * both * (zm[..., t] - zm[..., t - 1]).abs()\n"
            "    return total\n",
            # torch.diff and where, using that padding comes after the real tokens
            "def rationale_penalty(z, mask, lambda1, lambda2):\n"
            "    zm = torch.where(mask, z, torch.zeros_like(z))\n"
            "    jumps = torch.diff(zm, dim=-1).abs() * mask[..., 1:]\n"
            "    return lambda1 * zm.sum(dim=-1) + lambda2 * jumps.sum(dim=-1)\n",
        ],
        "wrong": [
            ("def rationale_penalty(z, mask, lambda1, lambda2):\n"
             "    zm = z * mask\n"
             "    jumps = (zm[..., 1:] - zm[..., :-1]).abs()\n"
             "    return lambda1 * zm.sum(-1) + lambda2 * jumps.sum(-1)\n",
             "both tokens are real"),
            ("def rationale_penalty(z, mask, lambda1, lambda2):\n"
             "    jumps = (z[..., 1:] - z[..., :-1]).abs()\n"
             "    return lambda1 * z.sum(-1) + lambda2 * jumps.sum(-1)\n",
             "mask is ignored"),
            ("def rationale_penalty(z, mask, lambda1, lambda2):\n"
             "    m = mask.to(z.dtype)\n"
             "    zm = z * m\n"
             "    jumps = (zm[..., 1:] - zm[..., :-1]).abs() * m[..., 1:]\n"
             "    return lambda2 * zm.sum(-1) + lambda1 * jumps.sum(-1)\n", "swapped"),
            ("def rationale_penalty(z, mask, lambda1, lambda2):\n"
             "    m = mask.to(z.dtype)\n"
             "    zm = z * m\n"
             "    jumps = (zm[..., 1:] - zm[..., :-1]).abs() * m[..., 1:]\n"
             "    return (lambda1 * zm.sum(-1) + lambda2 * jumps.sum(-1)) / m.sum(-1)\n",
             "averaged"),
            ("def rationale_penalty(z, mask, lambda1, lambda2):\n"
             "    m = mask.to(z.dtype)\n"
             "    zm = z * m\n"
             "    jumps = (zm[..., 1:] - zm[..., :-1]) ** 2 * m[..., 1:]\n"
             "    return lambda1 * zm.sum(-1) + lambda2 * jumps.sum(-1)\n", "squared"),
            ("def rationale_penalty(z, mask, lambda1, lambda2):\n"
             "    m = mask.to(z.dtype)\n"
             "    zm = z * m\n"
             "    jumps = (zm[..., 1:] - zm[..., :-1]).abs() * m[..., 1:]\n"
             "    value = lambda1 * zm.sum(-1) + lambda2 * jumps.sum(-1)\n"
             "    return torch.tensor(value.detach().numpy())\n", "no gradient"),
            ("def rationale_penalty(z, mask, lambda1, lambda2):\n"
             "    m = mask.to(z.dtype)\n"
             "    zm = z * m\n"
             "    jumps = (zm[..., 1:] - zm[..., :-1]).abs() * m[..., 1:]\n"
             "    return lambda1 * zm.sum() + lambda2 * jumps.sum()\n", "one value per review"),
        ],
    },
    "q3": {
        "right": [
            # torch.distributions.Bernoulli, loo baseline as (sum - c) / (S - 1)
            "def reinforce_mask_loss(logits, samples, costs, mask):\n"
            "    S = samples.shape[0]\n"
            "    c = costs.detach()\n"
            "    baseline = (c.sum(0, keepdim=True) - c) / (S - 1)\n"
            "    dist = torch.distributions.Bernoulli(logits=logits)\n"
            "    log_p = (dist.log_prob(samples) * mask).sum(-1)\n"
            "    return ((c - baseline) * log_p).mean()\n",
            # binary cross-entropy as -log p, an explicit loop for the baseline, NumPy costs
            "def reinforce_mask_loss(logits, samples, costs, mask):\n"
            "    c = costs.detach().numpy()\n"
            "    S = c.shape[0]\n"
            "    b = np.stack([np.delete(c, s, axis=0).mean(0) for s in range(S)])\n"
            "    adv = torch.tensor(c - b, dtype=logits.dtype)\n"
            "    nll = F.binary_cross_entropy_with_logits(logits.expand_as(samples), samples,\n"
            "                                             reduction='none')\n"
            "    log_p = -(nll * mask).sum(-1)\n"
            "    return (adv * log_p).sum() / adv.numel()\n",
        ],
        "wrong": [
            ("def reinforce_mask_loss(logits, samples, costs, mask):\n"
             "    c = costs.detach()\n"
             + _LOG_P +
             "    log_p = (log_p * mask).sum(-1)\n"
             "    return ((c - c.mean(0, keepdim=True)) * log_p).mean()\n", "here 0.8 (S = 5)"),
            ("def reinforce_mask_loss(logits, samples, costs, mask):\n"
             "    c = costs.detach()\n"
             + _LOG_P +
             "    log_p = (log_p * mask).sum(-1)\n"
             "    return (c * log_p).mean()\n", "without a baseline"),
            ("def reinforce_mask_loss(logits, samples, costs, mask):\n"
             "    c = costs.detach()\n"
             "    b = (c.sum(0, keepdim=True) - c) / (c.shape[0] - 1)\n"
             + _LOG_P +
             "    log_p = (log_p * mask).sum(-1) / mask.sum(-1)\n"
             "    return ((c - b) * log_p).mean()\n", "SUM over the real"),
            ("def reinforce_mask_loss(logits, samples, costs, mask):\n"
             "    c = costs.detach()\n"
             + _LOG_P +
             "    return (c * log_p.sum(-1)).mean()\n", "padded position"),
            ("def reinforce_mask_loss(logits, samples, costs, mask):\n"
             "    b = (costs.sum(0, keepdim=True) - costs) / (costs.shape[0] - 1)\n"
             + _LOG_P +
             "    return ((costs - b) * (log_p * mask).sum(-1)).mean()\n", "detach"),
            ("def reinforce_mask_loss(logits, samples, costs, mask):\n"
             "    c = costs.detach()\n"
             "    b = (c.sum(0, keepdim=True) - c) / (c.shape[0] - 1)\n"
             + _LOG_P +
             "    return -((c - b) * (log_p * mask).sum(-1)).mean()\n", "wrong sign"),
            ("def reinforce_mask_loss(logits, samples, costs, mask):\n"
             "    c = costs.detach()\n"
             "    b = (c.sum(1, keepdim=True) - c) / (c.shape[1] - 1)\n"
             + _LOG_P +
             "    return ((c - b) * (log_p * mask).sum(-1)).mean()\n", "dim 0"),
            ("def reinforce_mask_loss(logits, samples, costs, mask):\n"
             "    c = costs.detach()\n"
             "    b = (c.sum(0, keepdim=True) - c) / (c.shape[0] - 1)\n"
             + _LOG_P +
             "    return ((c - b) * (log_p * mask).sum(-1)).sum()\n", "divide by S * B"),
            ("def reinforce_mask_loss(logits, samples, costs, mask):\n"
             "    c = costs.detach()\n"
             "    b = (c.sum(0, keepdim=True) - c) / (c.shape[0] - 1)\n"
             "    return ((c - b) * (samples * torch.sigmoid(logits) * mask).sum(-1)).mean()\n",
             "grad log p(mask)"),
        ],
    },
    "q4": {
        "right": [
            # the uniform threshold form u < sigmoid(l), i.e. noise -L, used consistently
            "def st_mask(logits, u, tau):\n"
            "    noise = torch.log1p(-u) - torch.log(u)\n"
            "    soft = torch.sigmoid((logits + noise) / tau)\n"
            "    hard = (u < torch.sigmoid(logits)).to(soft.dtype)\n"
            "    return hard + soft - soft.detach()\n",
            # the widely copied form hard - soft.detach() + soft (exact up to one ulp)
            "def st_mask(logits, u, tau):\n"
            "    soft = torch.sigmoid((logits + torch.log(u / (1 - u))) / tau)\n"
            "    hard = (soft > 0.5).float()\n"
            "    return hard - soft.detach() + soft\n",
        ],
        "wrong": [
            ("def st_mask(logits, u, tau):\n"
             "    return torch.sigmoid((logits + torch.log(u) - torch.log(1 - u)) / tau)\n",
             "relaxed (soft) sample"),
            ("def st_mask(logits, u, tau):\n"
             "    return (logits + torch.log(u) - torch.log(1 - u) > 0).float()\n",
             "no gradient"),
            ("def st_mask(logits, u, tau):\n"
             "    noise = torch.log(u) - torch.log(1 - u)\n"
             "    soft = torch.sigmoid(logits + noise)\n"
             "    hard = (logits + noise > 0).float()\n"
             "    return hard + soft - soft.detach()\n", "temperature"),
            ("def st_mask(logits, u, tau):\n"
             "    soft = torch.sigmoid(logits / tau)\n"
             "    hard = (soft > 0.5).float()\n"
             "    return hard + soft - soft.detach()\n", "ignores the noise"),
            ("def st_mask(logits, u, tau):\n"
             "    noise = torch.log(u) - torch.log(1 - u)\n"
             "    soft = torch.sigmoid((logits + noise) / tau)\n"
             "    hard = (u < torch.sigmoid(logits)).float()\n"
             "    return hard + soft - soft.detach()\n", "different noise"),
        ],
    },
}

# issue 14: the student's own helper may carry a library's name
CASES["q1"]["right"].append(
    "def precision_recall_f1(tp, n_selected, n_true):\n"
    "    p = tp / n_selected if n_selected else 0.0\n"
    "    r = tp / n_true if n_true else 0.0\n"
    "    return p, r, (2 * p * r / (p + r) if p + r else 0.0)\n"
    "def rationale_prf(selected, truth, mask):\n"
    + _PRF_SOLUTION_BODY
    + "    return precision_recall_f1(tp, n_s, n_t)\n")
