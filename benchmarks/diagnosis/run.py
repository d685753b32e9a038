"""Diagnose every case of the benchmark with the health report; write per-case results and the summary.

    .venv/bin/python benchmarks/diagnosis/run.py [--fast] [--out DIR]

For each case: the model as built (before training), one ``helpers.report`` call with the case's
optimizer and learning rate, on its training data. A broken case is *detected* when the report
raises a problem that names its fault (``cases.DETECTED_BY``), and *located* when the first such
finding names the labelled layer; a healthy case is a *false alarm* when the report raises
anything. Writes ``results.csv`` (one row per case) and ``summary.json`` (recall per fault
class, false-alarm rate, localisation, time) to ``--out`` (default ``benchmarks/diagnosis/results``).
``--fast`` runs one broken case per fault class and every fourth healthy one (``make test`` runs it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

import cases  # noqa: E402

import helpers  # noqa: E402

COLUMNS = ["case", "family", "dataset", "fault", "label_layers", "flagged", "detected", "located", "false_alarm",
           "first_finding", "seconds", "source", "twin"]


def diagnose(case: cases.Case, seed: int = 0) -> dict:
    """One case through the report: what it flagged, and whether that is right."""
    model, ds = case.build(seed), cases.dataset(case.dataset)
    start = time.perf_counter()
    rep = helpers.report(model, ds, optimizer=case.optimizer, lr=case.lr, seed=seed)
    seconds = time.perf_counter() - start
    expected = cases.DETECTED_BY.get(case.fault, set())
    hits = [f for f in rep.findings if f.problem in expected]
    located = bool(case.layers) and bool(hits) and hits[0].layer in case.layers
    return {"case": case.name, "family": case.family, "dataset": case.dataset, "fault": case.fault or "healthy",
            "label_layers": " | ".join(case.layers), "flagged": ", ".join(sorted(rep.problems)),
            "detected": bool(hits) if case.fault else None, "located": located if case.layers else None,
            "false_alarm": (not rep.ok) if case.fault is None else None,
            "first_finding": rep.findings[0].message if rep.findings else "", "seconds": seconds,
            "source": case.source, "twin": case.twin or ""}


def summarize(results: pd.DataFrame) -> dict:
    """Recall per fault class, false-alarm rate on the healthy set, localisation, time."""
    broken, healthy = results[results.fault != "healthy"], results[results.fault == "healthy"]
    localisable = broken[broken.located.notna()]
    return {
        "cases": {"broken": len(broken), "healthy": len(healthy)},
        "recall": {fault: float(g.detected.astype(bool).mean()) for fault, g in broken.groupby("fault")},
        "recall_overall": float(broken.detected.astype(bool).mean()) if len(broken) else float("nan"),
        "false_alarm_rate": float(healthy.false_alarm.astype(bool).mean()) if len(healthy) else float("nan"),
        "localisation": float(localisable.located.astype(bool).mean()) if len(localisable) else float("nan"),
        "localisable": len(localisable),
        "seconds_per_case": float(results.seconds.mean()),
        "seconds_total": float(results.seconds.sum()),
    }


def selected(fast: bool) -> list[cases.Case]:
    if not fast:
        return list(cases.CASES.values())
    one_per_fault = list({c.fault: c for c in reversed(cases.BROKEN)}.values())
    return one_per_fault + cases.HEALTHY[::4]


def run(fast: bool = False) -> tuple[pd.DataFrame, dict]:
    torch.set_num_threads(1)
    results = pd.DataFrame([diagnose(c) for c in selected(fast)], columns=COLUMNS)
    return results, summarize(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="one broken case per fault, every fourth healthy one")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    start = time.perf_counter()
    results, summary = run(args.fast)
    summary["wall_seconds"] = time.perf_counter() - start
    args.out.mkdir(parents=True, exist_ok=True)
    results.to_csv(args.out / "results.csv", index=False)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    missed = results[(results.detected == False) | (results.false_alarm == True)]  # noqa: E712
    for row in missed.itertuples():
        print(f"{'missed' if row.fault != 'healthy' else 'false alarm'}: {row.case} -> {row.flagged or 'nothing'}")


if __name__ == "__main__":
    main()
