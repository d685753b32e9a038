"""The claims ledger: margins, failure messages, the ledger files, the soft mode of the variant
run; and the two pages built from it (the claims page and the honest execution table), in a tiny
book built in a temporary folder."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import claims
from helpers.claims import Ledger, bound_margin

ROOT = Path(__file__).resolve().parents[1]


def test_bound_margin_is_the_worst_value_against_the_threshold():
    assert bound_margin([0.95, 0.91, 0.99], above=0.9) == pytest.approx(0.01 / 0.9)
    assert bound_margin([1e-8, 5e-7], below=1e-6) == pytest.approx(0.5)
    assert bound_margin([0.5], above=0.4, below=0.6) == pytest.approx(1 / 6)  # the closer bound counts
    assert bound_margin([0.3], above=0.4) == pytest.approx(-0.25)  # negative: the claim fails
    assert bound_margin([0.2], above=0.0) == pytest.approx(0.2)  # threshold 0: the distance itself
    assert bound_margin([0.2, math.nan], above=0.0) == -math.inf  # a NaN never holds


def test_check_records_values_threshold_and_margin(tmp_path):
    ledger = Ledger("01_demo", directory=tmp_path)
    ledger.check("ratio per seed", pd.Series([150.0, 400.0]), above=100)
    ledger.check("accuracy in range", np.float32(0.5), above=0.4, below=0.75)
    row = ledger.frame().set_index("statement").loc["ratio per seed"]
    assert row["values"] == [150.0, 400.0] and row["threshold"] == "> 100"
    assert row["margin"] == pytest.approx(0.5) and row["holds"]
    written = json.loads((tmp_path / "01_demo.json").read_text())
    assert written["chapter"] == "01_demo" and len(written["claims"]) == 2
    assert set(written["machine"]) == {"cpu", "kernels", "torch", "settings"}


def test_failing_claim_names_claim_value_and_threshold_and_is_recorded(tmp_path):
    ledger = Ledger("02_demo", directory=tmp_path)
    with pytest.raises(AssertionError, match=r"claim failed \[02_demo\] loss below 1.6: measured "
                                             r"\[1.2, 1.7\], needs < 1.6"):
        ledger.check("loss below 1.6", [1.2, 1.7], below=1.6)
    saved = claims.read(tmp_path)
    assert saved.loc[0, "holds"] == False  # noqa: E712 - a numpy bool
    assert saved.loc[0, "margin"] < 0


def test_nan_fails_a_bound_in_either_direction():
    ledger = Ledger("demo", directory=None)
    for bound in ({"above": 0.0}, {"below": 1.0}):
        with pytest.raises(AssertionError, match="measured nan"):
            ledger.check(f"a nan {bound}", math.nan, **bound)


def test_count_claims_k_of_n():
    ledger = Ledger("demo", directory=None)
    ledger.at_least("seeds that diverge", pd.Series([True, True, False, True]), k=3)
    row = ledger.frame().iloc[0]
    assert row["threshold"] == "≥ 3 of 4" and row["values"] == [3.0] and row["margin"] == pytest.approx(0.0)
    with pytest.raises(AssertionError, match=r"seeds that train: measured 1, needs ≥ 2 of 3"):
        ledger.at_least("seeds that train", [True, False, False], k=2)


def test_exact_claims_hold_or_fail_without_margin():
    ledger = Ledger("demo", directory=None)
    ledger.exact("learning rates that train", [0.1, 0.3], [0.1, 0.3])
    ledger.exact("status", np.array([1, 2]), [1, 2])
    assert ledger.frame()["margin"].isna().all()
    with pytest.raises(AssertionError, match=r"status of seed 0: measured diverged, expected ok"):
        ledger.exact("status of seed 0", "diverged", "ok")


def test_rechecking_a_statement_replaces_it():
    ledger = Ledger("demo", directory=None)
    ledger.check("x", 1.0, above=0)
    ledger.check("x", 2.0, above=0)
    assert len(ledger.frame()) == 1 and ledger.frame().loc[0, "values"] == [2.0]


def test_a_new_ledger_starts_the_chapter_file_afresh(tmp_path):
    Ledger("03_demo", directory=tmp_path).check("old claim", 1.0, above=0)
    Ledger("03_demo", directory=tmp_path)
    assert claims.read(tmp_path).empty


def test_directory_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(claims.DIR_ENV, str(tmp_path / "ledgers"))
    Ledger("04_demo").check("a", 1.0, below=2)
    assert (tmp_path / "ledgers" / "04_demo.json").exists()
    monkeypatch.delenv(claims.DIR_ENV)
    assert Ledger("04_demo").path is None


def test_soft_mode_records_and_reports_instead_of_raising(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(claims.SOFT_ENV, "1")
    ledger = Ledger("05_demo", directory=tmp_path)
    ledger.check("too small", 0.1, above=0.5)
    assert "claim failed [05_demo] too small" in capsys.readouterr().err
    assert not claims.read(tmp_path).loc[0, "holds"]


@pytest.mark.parametrize("call, error, message", [
    (lambda ledger: ledger.check("x", 1.0), ValueError, r"check\(\) needs a bound"),
    (lambda ledger: ledger.check("x", "big", above=1), TypeError, r"value must be a number or numbers, got 'big'"),
    (lambda ledger: ledger.check("x", [], above=1), ValueError, r"value is empty"),
    (lambda ledger: ledger.check("x", 1.0, above=math.nan), TypeError, r"above must be a finite number, got nan"),
    (lambda ledger: ledger.check("x", 1.0, above=2, below=1), ValueError, r"above=2.0 must be smaller than below=1.0"),
    (lambda ledger: ledger.check("", 1.0, above=0), ValueError, r"statement='' is not valid"),
    (lambda ledger: ledger.at_least("x", [1, 0], k=1), TypeError, r"holds must be a non-empty sequence of bools"),
    (lambda ledger: ledger.at_least("x", [True, False], k=3), ValueError, r"k=3 is not valid; it must be an int from"),
    (lambda ledger: Ledger(""), ValueError, r"chapter='' is not valid"),
])
def test_bad_arguments_name_argument_and_value(call, error, message):
    with pytest.raises(error, match=message):
        call(Ledger("demo", directory=None))


DEMO_CELLS = [
    "from helpers.claims import Ledger\nclaims = Ledger('00_demo')\n"
    "claims.check('a ratio over 10', [12.0, 30.0], above=10)\nclaims.at_least('runs that train', [True, True], k=1)\n",
    "claims.check('a claim that fails', 0.1, above=0.5)\n",
]


def build_tiny_book(folder: Path, failing: bool) -> subprocess.CompletedProcess:
    (folder / "chapters").mkdir(parents=True)
    (folder / "reference").mkdir()
    shutil.copytree(ROOT / "_ext", folder / "_ext")
    shutil.copy(ROOT / "reference" / "execution.md", folder / "reference")
    text = (ROOT / "reference" / "claims.md").read_text().replace("{py:class}`helpers.claims.Ledger`", "`Ledger`")
    (folder / "reference" / "claims.md").write_text(text)
    cells = [{"cell_type": "markdown", "id": "t", "metadata": {}, "source": "# Demo chapter\n"}]
    for i, code in enumerate(DEMO_CELLS[: 2 if failing else 1]):
        tags = ["raises-exception"] if i == 1 else []
        cells.append({"cell_type": "code", "id": f"c{i}", "metadata": {"tags": tags}, "execution_count": None,
                      "outputs": [], "source": code})
    notebook = {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                            "language": "python"}}, "nbformat": 4, "nbformat_minor": 5}
    (folder / "chapters" / "00_demo.ipynb").write_text(json.dumps(notebook))
    (folder / "intro.md").write_text("# Intro\n")
    (folder / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: chapters/00_demo\n"
                                     "  - file: reference/execution\n  - file: reference/claims\n")
    (folder / "_config.yml").write_text("title: t\nexecute:\n  execute_notebooks: cache\n  timeout: 120\n"
                                        "sphinx:\n  local_extensions:\n    trainability_claims: _ext/\n")
    env = {k: v for k, v in __import__("os").environ.items() if k not in (claims.DIR_ENV, claims.SOFT_ENV)}
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    return subprocess.run([str(jupyter_book), "build", str(folder), "-W", "-n", "--keep-going"],
                          capture_output=True, text=True, env=env, timeout=600)


def page_text(path: Path) -> str:
    import html
    import re

    main = path.read_text()
    main = main[main.find("<main"): main.find("</main>")]
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", main)))


def test_claims_page_lists_claims_and_execution_table_is_honest(tmp_path):
    """A chapter whose cell raised and whose claim failed is not shown as passed, and the claims
    page names the failing claim and fails the strict build; a healthy chapter is listed in full."""
    healthy = build_tiny_book(tmp_path / "healthy", failing=False)
    assert healthy.returncode == 0, healthy.stdout[-3000:] + healthy.stderr[-3000:]
    html = tmp_path / "healthy" / "_build" / "html"
    claims_page = page_text(html / "reference" / "claims.html")
    assert "2 claims in 1 chapters; 2 hold, 0 fail" in claims_page
    assert "a ratio over 10 12, 30 > 10 20%" in claims_page
    assert "runs that train 2 ≥ 1 of 2 1 of 2 to spare" in claims_page
    assert "passed 2 of 2" in page_text(html / "reference" / "execution.html")

    broken = build_tiny_book(tmp_path / "broken", failing=True)
    assert broken.returncode != 0
    assert "claim failed [00_demo] a claim that fails" in broken.stdout + broken.stderr
    html = tmp_path / "broken" / "_build" / "html"
    assert "FAILED 2 of 3" in page_text(html / "reference" / "execution.html")
    assert "a claim that fails 0.1 > 0.5 FAILS" in page_text(html / "reference" / "claims.html")
