"""Sentence classification where word order matters: Kim's TextCNN and Zhang et al.'s character CNN
against bag-of-words and bag-of-n-grams logistic regression measured in the same run.

No public sentence corpus can be downloaded on the machine this is developed on, so the corpus is
generated (seeded): each sentence holds filler words and one sentiment word from two lists; with
probability 1/2 the sentiment word is preceded by "not", which flips the label; 10% of the labels are then
flipped at random (so 90% is the best possible accuracy). Each sentiment word is negated half the time,
so a linear model of word counts cannot tell the label (about 50%: the label is the XOR of the word's
polarity and "not"); a model of word pairs can. These are therefore numbers on
a generated task, not comparable with Kim's published MR / SST results.

Protocol: ``--n`` sentences (25% fixed test split carved by cnnkit), every model trained through
``cnnkit.train.fit`` with configs (``text-csv`` data, the training split's vocabulary) or scikit-learn;
test accuracy and training time, mean ± std over ``--seeds`` seeds (the seed also generates the corpus).

    python benchmarks/text.py [--seeds 3] [--n 2000] [--epochs 6] [--threads 1] [--no-charcnn]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

POS = "good great excellent superb wonderful fine lovely brilliant".split()
NEG = "bad awful terrible poor dull boring weak lousy".split()
FILLER = "the a this that movie film plot story actor scene it was is very really quite and but so".split()


def make_corpus(path: Path, n: int, seed: int, noise: float = 0.1) -> None:
    rng = random.Random(seed)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for _ in range(n):
            positive = rng.random() < 0.5
            word = rng.choice(POS if positive else NEG)
            negated = rng.random() < 0.5
            words = [rng.choice(FILLER) for _ in range(rng.randint(5, 15))]
            words.insert(rng.randrange(len(words) + 1), f"not {word}" if negated else word)
            label = positive != negated
            if rng.random() < noise:
                label = not label
            w.writerow([" ".join(words), "pos" if label else "neg"])


def _cnnkit(path: Path, seed: int, model: dict[str, Any], data: dict[str, Any], train: dict[str, Any], optim: dict[str, Any],
            out: Path) -> tuple[float, float]:
    from cnnkit.config import validate_config
    from cnnkit.train import fit

    cfg = validate_config({
        "seed": seed, "model": model, "data": {"name": "text-csv", "root": str(path), **data},
        "train": {"checkpoint": {"every_epochs": 100}, **train}, "optim": optim,
    })
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        summary = fit(cfg, out=out, quiet=True)
    return float(summary["test_accuracy"]), time.perf_counter() - t0


def _sklearn(path: Path, ngram: tuple[int, int]) -> tuple[float, float]:
    # The same split cnnkit carves (fixed seed, stratified): rebuilt from the data module.
    import numpy as np
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    from cnnkit.data.sources.text import TextCsvOptions, read_text_csv
    from cnnkit.data.targets import carve, parse_targets

    texts, cells = read_text_csv(path, TextCsvOptions())
    t = parse_targets(cells, kind="classes", source=str(path))
    tr, te = carve(t, "train", 0.25), carve(t, "test", 0.25)
    t0 = time.perf_counter()
    vec = CountVectorizer(ngram_range=ngram, token_pattern=r"(?u)\b\w+\b")
    xtr = vec.fit_transform([texts[i] for i in tr])
    clf = LogisticRegression(max_iter=2000).fit(xtr, t.y[tr].numpy())
    acc = float(np.mean(clf.predict(vec.transform([texts[i] for i in te])) == t.y[te].numpy()))
    return acc, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-charcnn", action="store_true")
    args = ap.parse_args()
    train = {"epochs": args.epochs, "threads": args.threads}
    adam = {"name": "adam", "lr": 0.002}
    results: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            path = Path(tmp) / f"corpus{seed}.csv"
            make_corpus(path, args.n, seed)
            runs = {
                "bag of words + logistic regression": lambda: _sklearn(path, (1, 1)),
                "bag of 1-2-grams + logistic regression": lambda: _sklearn(path, (1, 2)),
                "textcnn (Kim 2014, CNN-rand, Adadelta)": lambda: _cnnkit(
                    path, seed, {"name": "textcnn"}, {"max_length": 24, "batch_size": 50}, {**train, "max_norm": 3.0},
                    {"name": "adadelta", "lr": 1.0, "rho": 0.95, "eps": 1e-6}, Path(tmp) / f"kim{seed}"),
                "textcnn, 64-d, Adam": lambda: _cnnkit(
                    path, seed, {"name": "textcnn", "embed_dim": 64}, {"max_length": 24, "batch_size": 50}, train, adam,
                    Path(tmp) / f"small{seed}"),
            }
            if not args.no_charcnn:
                runs["charcnn (Zhang et al. 2015, small)"] = lambda: _cnnkit(
                    path, seed, {"name": "charcnn"}, {"tokenizer": "char", "max_length": 150, "batch_size": 64},
                    {**train, "epochs": 2 * args.epochs}, {"name": "adam", "lr": 0.0005}, Path(tmp) / f"char{seed}")
            for name, run in runs.items():
                results.setdefault(name, []).append(run())
                print(f"seed {seed}: {name}: {results[name][-1][0]:.4f} in {results[name][-1][1]:.1f} s", flush=True)

    def ms(values: list[float]) -> str:
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.4f} ± {sd:.4f}"

    base = statistics.mean(a for a, _ in results["bag of words + logistic regression"])
    print(f"\n{args.n} sentences (25% test), {args.seeds} seeds, best possible accuracy 0.90 (10% label noise)")
    print("| model | test accuracy | vs bag of words | train seconds |\n| --- | --- | --- | --- |")
    for name, rs in results.items():
        accs, secs = [a for a, _ in rs], [s for _, s in rs]
        print(f"| {name} | {ms(accs)} | {statistics.mean(accs) / base:.2f}x | {statistics.mean(secs):.1f} ± {statistics.stdev(secs) if len(secs) > 1 else 0.0:.1f} |")


if __name__ == "__main__":
    main()
