"""Chapter 10's estimator comparison at a longer run: ``python -m tools.ch10_long_run``.

    python -m tools.ch10_long_run                        # 120 epochs -> lib/data/ch10_long_run.json
    python -m tools.ch10_long_run --epochs 15 --out /tmp/x.json   # the notebook's length

Chapter 10 (``chapters/10_case_categorical_vae.ipynb``) trains four settings (estimators and
their temperatures) on ten paired seeds for 15 epochs, all that fits its 60-second budget. A
ranking read at one training length can reverse at another, so this script trains the same
settings, with the same model, data, seeds and pairing, for longer (120 epochs by default, eight
times the chapter's run), plus a fifth, the relaxed Gumbel-softmax at the fixed temperature 2/3
(the chapter compares annealing with it only here), and writes per seed:

* the mean test negative ELBO with discrete codes every ``--eval-every`` epochs (the learning
  curve), and its KL term;
* at the end, the test negative ELBO (``N_EVAL_SAMPLES`` one-hot codes per image) and the
  negative importance-weighted bound on the first ``N_IWAE_IMAGES`` test images with ``K_IWAE``
  one-hot codes, with the change of the bound when ``k`` doubles from ``K_IWAE / 2``.

The annealed settings use ``jang_anneal`` over the run's own number of steps, so a longer run is
not a continuation of the chapter's run: the temperature reaches its floor at 48% of whichever
run it is. Everything is float64 with the weights snapped to ``lib.training``'s grid, so the
numbers are the same on every CPU. The file records the command, the commit and the
configuration; the chapter loads and prints it. ``tests/test_ch10_long_run.py`` reruns a slice
(one setting, the first ``--stop-after`` epochs) and checks that it reproduces the file's
corresponding entries.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from tools import provenance

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "lib" / "data" / "ch10_long_run.json"

# The chapter's configuration (chapters/10_case_categorical_vae.ipynb, SCALE_UP = False).
N_LATENT, N_CATEGORIES, N_HIDDEN = 8, 10, 64
N_SEEDS, LR, BATCH_SIZE, N_SAMPLES = 10, 5e-3, 100, 2
TAU_FIXED = 2 / 3
N_EVAL_SAMPLES = 2
K_IWAE, N_IWAE_IMAGES = 256, 100
#: label -> (estimator, temperature: a number, or "anneal" for jang_anneal over the run)
SETTINGS = {
    "Gumbel-S., annealed": ("gumbel_softmax", "anneal"),
    "Gumbel-S., tau = 2/3": ("gumbel_softmax", TAU_FIXED),
    "ST Gumbel-S., annealed": ("st_gumbel_softmax", "anneal"),
    "ST (straight-through)": ("straight_through", 1.0),
    "SF (REINFORCE, LOO)": ("reinforce_loo", 1.0),
}


def run_setting(label: str, *, n_epochs: int, eval_every: int, stop_after: int | None = None,
                final: bool = True) -> dict:
    """Train one setting's ``N_SEEDS`` stacked models; return its entry of the results file.

    ``stop_after`` stops training after that many epochs while keeping everything else (the
    temperature schedule over ``n_epochs``, the evaluation epochs) as in the full run, so that
    the entries it returns are those of the full run up to that epoch.
    """
    from lib.schedules import jang_anneal
    from lib.utils import set_seed
    from lib.vae import (
        CategoricalVAE,
        discrete_negative_elbo,
        importance_log_weights,
        load_binarized_digits,
        negative_iwae,
        train_vae,
    )

    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)
    estimator, tau = SETTINGS[label]
    data = load_binarized_digits(threshold=8, test_size=360, seed=0)
    total_steps = n_epochs * math.ceil(data.train.shape[0] / BATCH_SIZE)
    if tau == "anneal":
        tau = jang_anneal(total_steps)
    epochs = n_epochs if stop_after is None else min(stop_after, n_epochs)
    generator = set_seed(0)  # the same initial weights, image orders and noise in every setting
    model = CategoricalVAE(N_LATENT, N_CATEGORIES, N_HIDDEN, n_models=N_SEEDS)
    start = time.process_time()
    history = train_vae(model, data, estimator, n_epochs=epochs, batch_size=BATCH_SIZE, lr=LR,
                        tau=tau, n_samples=N_SAMPLES, eval_every=eval_every,
                        n_eval_samples=N_EVAL_SAMPLES, generator=generator, progress=False)
    entry = {
        "estimator": estimator,
        "tau": "jang_anneal" if callable(tau) else tau,
        "eval_epochs": history.eval_epochs.tolist(),
        "test_negative_elbo": history.test_negative_elbo.T.tolist(),  # [seed][eval]
        "test_kl": history.test_kl.T.tolist(),
    }
    if final and epochs == n_epochs:
        elbo = discrete_negative_elbo(model, data.test, n_samples=10, generator=set_seed(4))
        log_w = importance_log_weights(model, data.test[:N_IWAE_IMAGES], n_samples=K_IWAE,
                                       generator=set_seed(7))  # [K, seeds, images]
        iwae = negative_iwae(log_w).mean(-1)
        halves = sum(negative_iwae(part).mean(-1) for part in log_w.chunk(2)) / 2
        entry["final"] = {
            "test_negative_elbo": elbo.mean(-1).tolist(),  # [seed], all test images
            "negative_elbo_iwae_images": elbo[:, :N_IWAE_IMAGES].mean(-1).tolist(),
            "negative_iwae": iwae.tolist(),
            "iwae_change_from_half_k": (iwae - halves).tolist(),
        }
    entry["cpu_seconds"] = round(time.process_time() - start, 1)
    return entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=120)
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--settings", nargs="*", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    config = {"n_latent": N_LATENT, "n_categories": N_CATEGORIES, "n_hidden": N_HIDDEN,
              "n_seeds": N_SEEDS, "lr": LR, "batch_size": BATCH_SIZE, "n_samples": N_SAMPLES,
              "n_epochs": args.epochs, "eval_every": args.eval_every, "k_iwae": K_IWAE,
              "n_iwae_images": N_IWAE_IMAGES, "dtype": "float64"}
    results = provenance.record("tools.ch10_long_run", argv, config)
    for label in args.settings:
        results["settings"][label] = run_setting(label, n_epochs=args.epochs,
                                                 eval_every=args.eval_every)
        final = results["settings"][label].get("final", {})
        print(f"{label:26} -ELBO {np.mean(final['test_negative_elbo']):.2f}  "
              f"-IWAE {np.mean(final['negative_iwae']):.2f}  "
              f"({results['settings'][label]['cpu_seconds']} s CPU)", flush=True)
    provenance.write(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
