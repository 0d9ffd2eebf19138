PREAMBLE = "import itertools\nimport numpy as np\nimport torch\n"

# The exact expected loss, used by the q3 snippets that differentiate it.
EXPECTED_LOSS = (
    "def expected_loss(logits, theta, y):\n"
    "    return (torch.softmax(logits, -1) * (theta - y) ** 2).sum()\n"
)

CASES = {
    "q1": {
        "right": [
            "receives_gradient = dict(phi=True, alpha=False, theta=True, psi=True)\n",
            # numpy booleans, another key order
            "receives_gradient = {'psi': np.bool_(True), 'theta': True, 'alpha': np.False_,\n"
            "                     'phi': True}\n",
        ],
        "wrong": [
            # the classic: "everything before the sample gets nothing"
            ("receives_gradient = dict(phi=False, alpha=False, theta=True, psi=True)\n",
             "another path"),
            ("receives_gradient = dict(phi=True, alpha=True, theta=True, psi=True)\n",
             "ONLY way"),
            ("receives_gradient = dict(phi=True, alpha=False, theta=False, psi=True)\n",
             "AFTER the sample"),
            ("receives_gradient = dict(phi=True, alpha=False, theta=True, psi=False)\n",
             "does not feed the sample"),
            ("receives_gradient = dict(phi=False, alpha=True, theta=False, psi=False)\n",
             "4 of your 4 answers are wrong"),
            ("receives_gradient = dict(phi=1, alpha=0, theta=1, psi=1)\n", "True or False"),
            ("receives_gradient = dict(phi=True, theta=True, psi=True)\n", "missing"),
            ("receives_gradient = ['phi', 'theta', 'psi']\n", "dict"),
        ],
    },
    "q2": {
        "right": [
            # torch, dot product
            "def expected_loss(logits, theta, y):\n"
            "    return torch.dot(torch.softmax(logits, 0), (theta - y) ** 2)\n",
            # numpy, a stable softmax by hand, returns a Python float
            "def expected_loss(logits, theta, y):\n"
            "    l = np.asarray(logits, dtype=float)\n"
            "    p = np.exp(l - l.max()); p /= p.sum()\n"
            "    return float(p @ (np.asarray(theta, dtype=float) - y) ** 2)\n",
            # an explicit loop over outcomes, log-softmax, a 1-element result
            "def expected_loss(logits, theta, y):\n"
            "    log_p = torch.log_softmax(logits, -1)\n"
            "    total = torch.zeros(1)\n"
            "    for i in range(len(logits)):\n"
            "        total = total + log_p[i].exp() * (theta[i] - y) ** 2\n"
            "    return total\n",
        ],
        "wrong": [
            ("def expected_loss(logits, theta, y):\n"
             "    return ((theta - y) ** 2).mean()\n", "plain average"),
            ("def expected_loss(logits, theta, y):\n"
             "    return ((torch.softmax(logits, -1) * theta).sum() - y) ** 2\n",
             "AVERAGE output"),
            ("def expected_loss(logits, theta, y):\n"
             "    return (logits * (theta - y) ** 2).sum()\n", "logits themselves"),
            ("def expected_loss(logits, theta, y):\n"
             "    return (torch.sigmoid(logits) * (theta - y) ** 2).sum()\n", "sigmoid"),
            ("def expected_loss(logits, theta, y):\n"
             "    z = torch.distributions.Categorical(logits=logits).sample((1000,))\n"
             "    return ((theta[z] - y) ** 2).mean()\n", "samples"),
            ("def expected_loss(logits, theta, y):\n"
             "    return (theta[logits.argmax()] - y) ** 2\n", "most likely"),
            ("def expected_loss(logits, theta, y):\n"
             "    return (torch.softmax(logits, -1) * (theta - y)).sum()\n", "not sum_i"),
            ("def expected_loss(logits, theta, y):\n"
             "    return torch.softmax(logits, -1) * (theta - y) ** 2\n", "shape"),
        ],
    },
    "q3": {
        "right": [
            # the closed form p_i (L_i - E[L]) in numpy
            "def expected_loss_grad(logits, theta, y):\n"
            "    l = np.asarray(logits, dtype=float)\n"
            "    p = np.exp(l - l.max()); p /= p.sum()\n"
            "    losses = (np.asarray(theta, dtype=float) - y) ** 2\n"
            "    return p * (losses - p @ losses)\n",
            # autograd with torch.func.grad
            EXPECTED_LOSS
            + "def expected_loss_grad(logits, theta, y):\n"
            "    return torch.func.grad(expected_loss)(logits, theta, y)\n",
            # the softmax Jacobian as a matrix
            "def expected_loss_grad(logits, theta, y):\n"
            "    p = torch.softmax(logits, -1)\n"
            "    jacobian = torch.diag(p) - torch.outer(p, p)\n"
            "    return jacobian @ (theta - y) ** 2\n",
        ],
        "wrong": [
            # backpropagating through a sample: the logits get nothing
            ("def expected_loss_grad(logits, theta, y):\n"
             "    logits = logits.clone().requires_grad_(True)\n"
             "    z = torch.distributions.Categorical(logits=logits).sample()\n"
             "    loss = (theta[z] - y) ** 2 + 0 * logits.sum()\n"
             "    return torch.autograd.grad(loss, logits)[0]\n", "all zeros"),
            ("def expected_loss_grad(logits, theta, y):\n"
             "    return (theta - y) ** 2\n", "PROBABILITIES"),
            ("def expected_loss_grad(logits, theta, y):\n"
             "    return torch.softmax(logits, -1) * (theta - y) ** 2\n", "term is missing"),
            ("def expected_loss_grad(logits, theta, y):\n"
             "    p = torch.softmax(logits, -1)\n"
             "    losses = (theta - y) ** 2\n"
             "    return p * ((p * losses).sum() - losses)\n", "sign"),
            (EXPECTED_LOSS
             + "def expected_loss_grad(logits, theta, y):\n"
             "    theta = theta.clone().requires_grad_(True)\n"
             "    return torch.autograd.grad(expected_loss(logits, theta, y), theta)[0]\n",
             "with respect to theta"),
            ("def expected_loss_grad(logits, theta, y):\n"
             "    logits = logits.clone().requires_grad_(True)\n"
             "    z = torch.distributions.Categorical(logits=logits).sample((100,))\n"
             "    p = torch.softmax(logits, -1)\n"
             "    loss = ((theta[z] - y) ** 2 * torch.log(p[z])).mean()\n"
             "    return torch.autograd.grad(loss, logits)[0]\n", "samples"),
            ("def expected_loss_grad(logits, theta, y):\n"
             "    p = torch.softmax(logits, -1)\n"
             "    return p * (1 - p) * (theta - y) ** 2\n", "must sum to 0"),
        ],
    },
    "q4": {
        "right": [
            # vectorised: all masks at once, one call of f on a [2^n, n] batch
            "def exact_mask_expectation(logits, f):\n"
            "    from lib.estimators import enumerate_binary\n"
            "    masks = enumerate_binary(len(logits), dtype=torch.float64)\n"
            "    p = torch.sigmoid(logits.double())\n"
            "    log_w = masks @ torch.log(p) + (1 - masks) @ torch.log1p(-p)\n"
            "    return (log_w.exp() * f(masks)).sum()\n",
            # numpy loop, reversed order of the masks, Python floats
            "def exact_mask_expectation(logits, f):\n"
            "    p = 1 / (1 + np.exp(-np.asarray(logits, dtype=float)))\n"
            "    total = 0.0\n"
            "    for bits in reversed(list(itertools.product([1, 0], repeat=len(p)))):\n"
            "        b = np.array(bits, dtype=float)\n"
            "        w = np.prod(p ** b * (1 - p) ** (1 - b))\n"
            "        total += w * float(f(torch.tensor(b)))\n"
            "    return total\n",
        ],
        "wrong": [
            ("def exact_mask_expectation(logits, f):\n"
             "    total = 0.0\n"
             "    for bits in itertools.product([0.0, 1.0], repeat=len(logits)):\n"
             "        m = torch.tensor(bits)\n"
             "        total = total + torch.where(m == 1, logits, 1 - logits).prod() * f(m)\n"
             "    return total\n", "logits as probabilities"),
            ("def exact_mask_expectation(logits, f):\n"
             "    p = torch.sigmoid(logits)\n"
             "    total = 0.0\n"
             "    for bits in itertools.product([0.0, 1.0], repeat=len(logits)):\n"
             "        m = torch.tensor(bits)\n"
             "        total = total + torch.where(m == 1, 1 - p, p).prod() * f(m)\n"
             "    return total\n", "swaps"),
            ("def exact_mask_expectation(logits, f):\n"
             "    masks = list(itertools.product([0.0, 1.0], repeat=len(logits)))\n"
             "    return sum(f(torch.tensor(m)) for m in masks) / len(masks)\n",
             "plain average"),
            ("def exact_mask_expectation(logits, f):\n"
             "    return f(torch.sigmoid(logits))\n", "mean mask"),
            ("def exact_mask_expectation(logits, f):\n"
             "    p = torch.sigmoid(logits)\n"
             "    masks = torch.bernoulli(p.expand(2000, len(p)))\n"
             "    return torch.stack([f(m) for m in masks]).mean()\n", "samples masks"),
            # only the n one-hot masks ("one token kept at a time")
            ("def exact_mask_expectation(logits, f):\n"
             "    p = torch.sigmoid(logits)\n"
             "    return sum(p[i] * f(torch.eye(len(p))[i]) for i in range(len(p)))\n",
             "mask(s)"),
        ],
    },
}
