PREAMBLE = "import math\nimport numpy as np\nimport torch\n"

CASES = {
    "q1": {
        "right": [
            # the often-copied form, uniform noise from NumPy, probabilities via exp
            "def st_bernoulli(logits):\n"
            "    probs = 1 / (1 + torch.exp(-logits))\n"
            "    u = torch.as_tensor(np.random.rand(*logits.shape), dtype=logits.dtype)\n"
            "    hard = (u < probs.detach()).float()\n"
            "    return hard - probs.detach() + probs\n",
            # torch.bernoulli for the sample
            "def st_bernoulli(logits):\n"
            "    p = torch.sigmoid(logits)\n"
            "    return torch.bernoulli(p.detach()) + p - p.detach()\n",
        ],
        "wrong": [
            ("def st_bernoulli(logits):\n    return torch.sigmoid(logits)\n", "probabilities"),
            ("def st_bernoulli(logits):\n"
             "    p = torch.sigmoid(logits)\n"
             "    return (torch.rand_like(p) < p).float() + (p - p).detach()\n", "no gradient"),
            ("def st_bernoulli(logits):\n"
             "    p = torch.sigmoid(logits)\n"
             "    hard = (torch.rand_like(p) < p).float()\n"
             "    return hard + p.detach() - p\n", "wrong sign"),
            ("def st_bernoulli(logits):\n"
             "    p = torch.sigmoid(logits)\n"
             "    return (p > 0.5).float() + p - p.detach()\n", "deterministic"),
            ("def st_bernoulli(logits):\n"
             "    p = torch.sigmoid(logits)\n"
             "    hard = (torch.rand_like(p) < p).float()\n"
             "    return hard + logits - logits.detach()\n", "probability"),
            ("def st_bernoulli(logits):\n"
             "    p = torch.sigmoid(logits)\n"
             "    return (torch.rand_like(p) > p).float() + p - p.detach()\n", "reversed"),
            ("from lib.estimators import straight_through\n"
             "def st_bernoulli(logits):\n"
             "    p = torch.sigmoid(logits)\n"
             "    return straight_through((torch.rand_like(p) < p).float(), p)\n", "library"),
            ("def st_bernoulli(logits):\n"
             "    p = torch.sigmoid(logits)\n"
             "    return ((torch.rand_like(p) < p).float() + p - p.detach()).detach().numpy()\n",
             "numpy"),
        ],
    },
    "q2": {
        "right": [
            # Gumbel-max for the sample, F.one_hot, the probabilities' gradient
            "import torch.nn.functional as F\n"
            "def st_categorical(logits):\n"
            "    u = torch.rand_like(logits).clamp_min(1e-20)\n"
            "    index = (logits.detach() - torch.log(-torch.log(u))).argmax(-1)\n"
            "    probs = torch.softmax(logits, -1)\n"
            "    hard = F.one_hot(index, logits.shape[-1]).to(logits.dtype)\n"
            "    return hard - probs.detach() + probs\n",
        ],
        "wrong": [
            ("def st_categorical(logits):\n    return torch.softmax(logits, -1)\n", "one-hot"),
            ("import torch.nn.functional as F\n"
             "def st_categorical(logits):\n"
             "    p = torch.softmax(logits, -1)\n"
             "    hard = F.one_hot(p.argmax(-1), p.shape[-1]).float()\n"
             "    return hard + p - p.detach()\n", "argmax"),
            ("import torch.nn.functional as F\n"
             "def st_categorical(logits):\n"
             "    g = -torch.log(-torch.log(torch.rand_like(logits)))\n"
             "    soft = torch.softmax(logits + g, -1)\n"
             "    hard = F.one_hot(soft.argmax(-1), soft.shape[-1]).float()\n"
             "    return hard + soft - soft.detach()\n", "gumbel"),
            ("import torch.nn.functional as F\n"
             "def st_categorical(logits):\n"
             "    p = torch.softmax(logits, -1)\n"
             "    return F.one_hot(torch.multinomial(p.detach(), 1)[:, 0], p.shape[-1]).float()\n",
             "no gradient"),
        ],
    },
    "q3": {
        "right": [
            # t > 1/2 and p above it: exact gradient negative, straight-through positive;
            # the straight-through mean in closed form
            "p_wrong, t_wrong = 0.9, 0.7\n"
            "s = p_wrong * (1 - p_wrong)\n"
            "exact_grad = s * ((1 - t_wrong) ** 2 - t_wrong ** 2)\n"
            "st_mean = torch.tensor(2 * s * (p_wrong - t_wrong))\n",
        ],
        "wrong": [
            ("p_wrong, t_wrong = 0.7, 0.4\n"
             "s = 0.21\n"
             "exact_grad = s * (1 - 2 * 0.4)\n"
             "st_mean = 2 * s * (0.7 - 0.4)\n", "same sign"),
            ("p_wrong, t_wrong = 0.2, 0.4\n"
             "exact_grad = 1 - 2 * 0.4\n"
             "st_mean = 0.16 * 2 * (0.2 - 0.4)\n", "respect to p"),
            ("p_wrong, t_wrong = 0.2, 0.4\n"
             "exact_grad = 0.16 * (1 - 2 * 0.4)\n"
             "st_mean = 0.16 * (1 - 2 * 0.4)\n", "close to the exact gradient"),
            ("p_wrong, t_wrong = 0.2, 0.5\n"
             "exact_grad = 0.0\n"
             "st_mean = 0.16 * 2 * (0.2 - 0.5)\n", "zero"),
        ],
    },
    "q4": {
        "right": [
            "def binarize(w):\n"
            "    hard = torch.where(w < 0, -torch.ones_like(w), torch.ones_like(w))\n"
            "    mask = (w.abs() <= 1).to(w.dtype)\n"
            "    return hard.detach() + mask * (w - w.detach())\n",
        ],
        "wrong": [
            ("def binarize(w):\n    return torch.where(w >= 0, 1.0, -1.0) + 0 * w\n",
             "no gradient"),
            ("def binarize(w):\n    return torch.sign(w) + w - w.detach()\n", "torch.sign"),
            ("def binarize(w):\n    return torch.where(w >= 0, 1.0, -1.0) + w - w.detach()\n",
             "zero where |w| > 1"),
            ("def binarize(w):\n"
             "    t = torch.tanh(w)\n"
             "    return torch.where(w >= 0, 1.0, -1.0) + t - t.detach()\n", "smooth proxy"),
        ],
    },
}

# issue 14: the student's own helper may carry a library's name
CASES["q1"]["right"].append(
    "def straight_through(hard, soft):\n"
    "    return hard + soft - soft.detach()\n"
    "def st_bernoulli(logits):\n"
    "    p = torch.sigmoid(logits)\n"
    "    return straight_through((torch.rand_like(p) < p).float(), p)\n")
CASES["q1"]["wrong"].append((
    "import lib.estimators as est\n"
    "_st = getattr(est, 'straight_' + 'through')\n"
    "def st_bernoulli(logits):\n"
    "    p = torch.sigmoid(logits)\n"
    "    return _st((torch.rand_like(p) < p).float(), p)\n", "not allowed"))
