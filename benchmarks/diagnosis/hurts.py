"""Check every broken case's label: the fault really hurts training.

    .venv/bin/python benchmarks/diagnosis/hurts.py [--seeds 3] [--out benchmarks/diagnosis/hurts.csv]

Each broken case and its healthy twin train for the case's steps with ``helpers.train.fit`` (the
case's optimizer and learning rate), on ``--seeds`` seeds; the label holds when the broken
program's median test accuracy is at least ``MARGIN`` below the twin's. A stale-BatchNorm case
trains like its twin; its fault is in evaluation: the trained twin is evaluated once with its own
running statistics and once with statistics from shifted data.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import pandas as pd
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

import cases  # noqa: E402

from helpers import train  # noqa: E402

MARGIN = 0.10  # accuracy points


def accuracy(case: cases.Case, seed: int) -> float:
    model, ds = case.build(seed), cases.dataset(case.dataset)
    result = train.fit(model, ds, steps=case.steps, batch_size=64, lr=case.lr, optimizer=case.optimizer, seed=seed,
                       eval_every=case.steps, progress=False)
    return 0.0 if result.status == "diverged" else result.final("accuracy")


def stale_accuracy(case: cases.Case, seed: int) -> tuple[float, float]:
    twin = cases.CASES[case.twin]
    model, ds = twin.build(seed), cases.dataset(twin.dataset)
    train.fit(model, ds, steps=twin.steps, batch_size=64, lr=twin.lr, optimizer=twin.optimizer, seed=seed,
              eval_every=twin.steps, progress=False)
    fresh = train.evaluate(model, ds.x_test, ds.y_test)["accuracy"]
    shifted = copy.deepcopy(model).train()
    with torch.no_grad():
        for _ in range(30):
            shifted(ds.x_train[:512] * 5 + 3)
    return train.evaluate(shifted, ds.x_test, ds.y_test)["accuracy"], fresh


def check(case: cases.Case, seeds: int) -> dict:
    if case.fault == "stale_batchnorm":
        pairs = [stale_accuracy(case, s) for s in range(seeds)]
        broken, twin = [p[0] for p in pairs], [p[1] for p in pairs]
    else:
        broken = [accuracy(case, s) for s in range(seeds)]
        twin = [accuracy(cases.CASES[case.twin], s) for s in range(seeds)]
    b, t = statistics.median(broken), statistics.median(twin)
    return {"case": case.name, "fault": case.fault, "twin": case.twin, "broken_median": b, "twin_median": t,
            "broken": " ".join(f"{v:.3f}" for v in broken), "twin_accuracies": " ".join(f"{v:.3f}" for v in twin),
            "hurts": b <= t - MARGIN}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "hurts.csv")
    parser.add_argument("cases", nargs="*", help="case names (default: every broken case)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    chosen = [cases.CASES[n] for n in args.cases] if args.cases else cases.BROKEN
    start = time.perf_counter()
    rows = []
    for case in chosen:
        rows.append(check(case, args.seeds))
        print(f"{case.name}: broken {rows[-1]['broken_median']:.3f} vs twin {rows[-1]['twin_median']:.3f}"
              f" -> {'hurts' if rows[-1]['hurts'] else 'DOES NOT HURT'}", flush=True)
    pd.DataFrame(rows).to_csv(args.out, index=False)
    print(f"{sum(r['hurts'] for r in rows)} of {len(rows)} faults hurt training; {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
