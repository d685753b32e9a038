"""Overhead of the Monitor: training time with it attached (default sampling) over training time without.

A 20-layer MLP of width 128 trains on digits for 200 steps of batch 64 with ``fit``, once with
``monitor=True`` and once without, alternating the order in each round so that drift in the
machine's load hits both alike. One warm-up round first; then the median ratio and every round's,
of wall-clock time and of CPU time (the process's, which a machine shared with other jobs inflates
less). Target: at most 1.05.

One torch thread by default: on a shared 2-core machine two OpenMP threads that wait on each other
make every small op slow and the timings meaningless; ``--threads 0`` keeps torch's own setting.

    .venv/bin/python benchmarks/monitor_overhead.py [--runs 7] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from helpers.data import load_digits
from helpers.init import init_
from helpers.models import mlp
from helpers.train import fit


def one_run(ds, monitored: bool, args) -> tuple[float, float]:
    model = init_(mlp(ds.n_features, ds.n_classes, depth=args.depth, width=args.width, activation="relu"),
                  "kaiming_normal", seed=0)
    start, cpu_start = time.perf_counter(), time.process_time()
    result = fit(model, ds, steps=args.steps, batch_size=args.batch, lr=0.01, seed=0,
                 monitor=True if monitored else None, progress=False)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    assert result.status == "ok" and result.steps_run == args.steps
    if monitored:
        assert result.monitor is not None and len(result.monitor.to_frame()) > 0
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed rounds (each: one run with, one without)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    ds = load_digits("standardized")
    print(f"MLP depth {args.depth}, width {args.width}; {args.steps} steps of batch {args.batch} on digits; "
          f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    one_run(ds, True, args)  # warm-up: first-call costs (optimizer set-up, allocator) paid outside the timing
    one_run(ds, False, args)
    ratios, cpu_ratios = [], []
    for i in range(args.runs):
        order = (True, False) if i % 2 == 0 else (False, True)
        times = {monitored: one_run(ds, monitored, args) for monitored in order}
        ratios.append(times[True][0] / times[False][0])
        cpu_ratios.append(times[True][1] / times[False][1])
        print(f"round {i + 1}: wall with monitor {times[True][0]:.3f} s, without {times[False][0]:.3f} s, "
              f"ratio {ratios[-1]:.3f} | CPU ratio {cpu_ratios[-1]:.3f}")
    median = statistics.median(ratios)
    verdict = "met" if median <= 1.05 else "NOT met"
    print(f"median ratio (with / without monitor): wall {median:.3f}, CPU {statistics.median(cpu_ratios):.3f}  "
          f"[target <= 1.05 on wall time: {verdict}]")


if __name__ == "__main__":
    main()
