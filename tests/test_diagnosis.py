"""The diagnosis benchmark (benchmarks/diagnosis): its label file and its saved hurts check in step with
the cases, and a fast subset of the run (one broken case per fault class, every fourth healthy case)."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pandas as pd
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "diagnosis"
sys.path.insert(0, str(BENCH))

import cases  # noqa: E402
import hurts  # noqa: E402
import run  # noqa: E402


def test_label_file_is_in_step_with_the_cases():
    with open(BENCH / "labels.csv", newline="") as f:
        saved = list(csv.DictReader(f))
    fresh = [{k: str(v) for k, v in row.items()} for row in cases.label_table()]
    assert saved == fresh, "labels.csv is stale: run python benchmarks/diagnosis/cases.py"


def test_every_broken_case_is_labelled_and_has_a_healthy_twin():
    assert len(cases.BROKEN) >= 40 and len(cases.HEALTHY) >= 40
    assert set(cases.FAULTS) == {c.fault for c in cases.BROKEN}
    for c in cases.BROKEN:
        assert c.fix and c.why and c.source and cases.CASES[c.twin].fault is None, c.name


def test_saved_hurts_check_covers_every_broken_case_and_holds():
    saved = pd.read_csv(BENCH / "hurts.csv")
    assert sorted(saved.case) == sorted(c.name for c in cases.BROKEN)
    assert dict(zip(saved.case, saved.twin)) == {c.name: c.twin for c in cases.BROKEN}
    assert saved.hurts.all(), list(saved[~saved.hurts].case)


def test_hurts_check_reproduces_for_one_case():
    saved = pd.read_csv(BENCH / "hurts.csv").set_index("case").loc["dead-layer1-digits"]
    again = hurts.check(cases.CASES["dead-layer1-digits"], seeds=3)
    assert again["hurts"] and again["broken_median"] == pytest.approx(saved.broken_median, abs=0.05)


def test_fast_subset_detects_every_fault_without_false_alarms():
    results, summary = run.run(fast=True)
    assert set(results.fault) == {*cases.FAULTS, "healthy"}
    misses = results[(results.detected == False) | (results.false_alarm == True)]  # noqa: E712
    assert misses.empty, misses[["case", "flagged"]].to_string()
    assert summary["false_alarm_rate"] == 0.0 and min(summary["recall"].values()) == 1.0
