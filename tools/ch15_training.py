"""Chapter 15's training comparison of the 2-subset and Bernoulli selectors:
``python -m tools.ch15_training``.

    python -m tools.ch15_training                      # 30 runs each -> lib/data/ch15_training.json
    python -m tools.ch15_training --settings "2-subset, SIMPLE" --out /tmp/x.json

Chapter 15 (``chapters/15_subsets_of_size_k.ipynb``) compares, in training, a rationale
selector that keeps exactly k = 2 tokens (the k-subset law of its keep-logits) with chapter 9's
Bernoulli selector, on chapter 9's harder task and with its training recipe (150 Adam steps,
minibatches of 16 reviews, the default penalties). Some Bernoulli runs collapse to an empty
selection, so the outcomes are bimodal and the comparison needs 30 runs per setting
(``../shared/experiments.md``): about a minute and a half of CPU, more than the chapter's
60-second budget. This script trains them and writes every run's test metrics (most likely
mask) with the command, the commit and the configuration; the chapter loads and prints the
file. Every setting starts from the same 30 initial weights and draws from the same seed
(paired by run). Everything is float64 with the weights snapped to ``lib.training``'s grid, so
the numbers are the same on every CPU; ``tests/test_ch15_training.py`` reruns one setting and
checks that it reproduces the file.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from tools import provenance

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "lib" / "data" / "ch15_training.json"

# Chapter 9's harder task and training recipe (chapters/09_case_rationales.ipynb).
HARD = {"min_length": 13, "max_length": 18, "n_sentiment": 2, "fillers": "zipf"}
N_TRAIN, N_TEST, LABEL_NOISE = 2_000, 500, 0.1
N_RUNS, N_STEPS, BATCH = 30, 150, 16
INIT_SEED, DRAW_SEED = 100, 40
K = 2
#: label -> (k: None for the Bernoulli selector, the registry's estimator)
SETTINGS = {
    "Bernoulli, REINFORCE + LOO": (None, "reinforce_loo"),
    "2-subset, REINFORCE + LOO": (K, "reinforce_loo"),
    "Bernoulli, straight-through": (None, "straight_through"),
    "2-subset, SIMPLE": (K, "straight_through"),
    "Bernoulli, Gumbel-softmax": (None, "gumbel_softmax"),
    "2-subset, relaxed top-k": (K, "gumbel_softmax"),
}
METRICS = ("accuracy", "precision", "recall", "f1", "kept")


def data():
    """(training set with flipped labels, clean test set) of chapter 9's harder task."""
    from lib.rationales import make_synthetic_reviews

    train = make_synthetic_reviews(N_TRAIN, seed=0, label_noise=LABEL_NOISE, **HARD)
    test = make_synthetic_reviews(N_TEST, seed=1, **HARD)
    return train, test


def run_setting(label: str, n_runs: int = N_RUNS) -> dict[str, list[float]]:
    """Train ``n_runs`` selectors of one setting side by side; their test metrics per run."""
    from lib.rationales import RationaleModel, evaluate_rationales, train_side_by_side
    from lib.utils import set_seed

    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)
    k, estimator = SETTINGS[label]
    train, test = data()
    torch.manual_seed(INIT_SEED)  # the same initial weights for every setting
    runs = [RationaleModel(len(train.vocab)) for _ in range(n_runs)]
    train_side_by_side(runs, train, estimator, n_steps=N_STEPS, batch_size=BATCH,
                       generator=set_seed(DRAW_SEED), k=k)
    results = [evaluate_rationales(m, test, k=k) for m in runs]
    return {key: [r[key] for r in results] for key in METRICS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--settings", nargs="*", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    config = {"task": HARD, "n_train": N_TRAIN, "n_test": N_TEST, "label_noise": LABEL_NOISE,
              "n_runs": N_RUNS, "n_steps": N_STEPS, "batch_size": BATCH, "k": K,
              "init_seed": INIT_SEED, "draw_seed": DRAW_SEED, "dtype": "float64"}
    results = provenance.record("tools.ch15_training", argv, config)
    for label in args.settings:
        start = time.process_time()
        entry = run_setting(label)
        entry["cpu_seconds"] = round(time.process_time() - start, 1)
        results["settings"][label] = entry
        print(f"{label:30} accuracy {np.mean(entry['accuracy']):.3f}  F1 "
              f"{np.mean(entry['f1']):.2f}  ({entry['cpu_seconds']} s CPU)", flush=True)
    provenance.write(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
