"""Notebook hygiene: chapters are committed without outputs, start with the Colab install cell that
points at the repository of ``_config.yml``, have a kernelspec; ``_toc.yml`` lists only files that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def source(cell: dict) -> str:
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))


def test_there_are_chapters():
    assert CHAPTERS, "no chapters/*.ipynb found"
    assert ROOT / "chapters" / "00_toolkit.ipynb" in CHAPTERS


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    nb = load(path)
    for i, cell in enumerate(code_cells(nb)):
        assert cell.get("outputs") == [], f"{path.name}: code cell {i} has outputs"
        assert cell.get("execution_count") is None, f"{path.name}: code cell {i} has an execution count"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_first_code_cell_installs_from_the_configured_repository(path, config):
    url, branch = config["repository"]["url"], config["repository"]["branch"]
    assert branch == "main"
    first = code_cells(load(path))[0]
    text = source(first)
    assert f"git+{url}@{branch}" in text, f"{path.name}: first code cell does not install git+{url}@{branch}"
    assert "trainability-helpers @ git+" in text  # the distribution name of pyproject.toml
    assert '"google.colab" in sys.modules' in text  # installs only in Colab
    assert "remove-output" in first.get("metadata", {}).get("tags", [])


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_has_kernelspec(path):
    spec = load(path)["metadata"].get("kernelspec", {})
    assert spec.get("name") and spec.get("language") == "python", f"{path.name}: kernelspec {spec!r}"


def _toc_files(node) -> list[str]:
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("file", "root") and isinstance(value, str):
                found.append(value)
            else:
                found.extend(_toc_files(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_toc_files(item))
    return found


def test_toc_lists_only_existing_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = _toc_files(toc)
    assert "intro" in files and "chapters/00_toolkit" in files
    suffixes = ("", ".md", ".ipynb", ".rst")
    missing = [f for f in files if not any((ROOT / (f + s)).is_file() for s in suffixes)]
    assert not missing, f"_toc.yml lists files that do not exist: {missing}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_claims_go_through_the_ledger(path):
    """Every claim is checked by helpers.claims.Ledger (so the claims page lists it with its margin),
    not by a bare assert; a chapter's ledger is named after its file."""
    nb = load(path)
    text = "\n".join(source(c) for c in code_cells(nb))
    assert f'Ledger("{path.stem}")' in text, f"{path.name}: no claims = Ledger({path.stem!r})"
    bare = [line.strip() for line in text.splitlines() if line.strip().startswith("assert ")]
    assert not bare, f"{path.name}: bare asserts instead of claims: {bare[:3]}"


def _exercise_code_cells(nb: dict) -> list[dict]:
    cells = nb["cells"]
    starts = [i for i, c in enumerate(cells) if c["cell_type"] == "markdown" and "## Exercises" in source(c)]
    if not starts:
        return []
    return [c for c in cells[starts[0]:] if c["cell_type"] == "code"]


@pytest.mark.parametrize("path", [p for p in CHAPTERS if p.stem != "00_toolkit"], ids=lambda p: p.name)
def test_exercise_answers_are_collapsed(path):
    """Answers are executed at build but collapsed until the reader opens them."""
    answers = _exercise_code_cells(load(path))
    assert answers, f"{path.name}: no exercises"
    for cell in answers:
        tags = set(cell.get("metadata", {}).get("tags", []))
        assert tags & {"hide-cell", "hide-output", "remove-cell"}, f"{path.name}: an answer is not collapsed: {tags}"
        prompt = cell.get("metadata", {}).get("mystnb", {}).get("code_prompt_show", "")
        assert "answer" in prompt.lower(), f"{path.name}: the toggle does not say it shows the answer: {prompt!r}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_sources_are_named_not_numbered(path):
    """Readers cannot look up "source 002": sources are named by what they are (reference/sources)."""
    import re

    nb = load(path)
    text = "\n".join(source(c) for c in nb["cells"])
    assert not re.findall(r"[Ss]ource[ _]?0\d\d", text), f"{path.name} numbers its sources"


# -- thin chapters: the experiment in view, the plumbing in the package --------------------------------
MAX_VISIBLE_LINES = 25  # non-blank lines of a code cell a reader sees
#: Code lines (not blank, not comments) per chapter: 3,773 in all before the package took the
#: experiments' plumbing, 2,834 once it held the experiments, 1,955 once it held the sentences the
#: chapters generate and the numbers they summarize (the longest chapter, 04, 448). A ceiling per
#: chapter, so that plumbing does not grow back into the chapters as the book grows.
MAX_CHAPTER_CODE = 450
HIDDEN = {"hide-input", "hide-cell", "remove-input", "remove-cell"}
#: Code a chapter may write only in a cell that teaches it (tagged ``teaches``): hooks, optimizers, loops.
PLUMBING = re.compile(r"register_(forward|full_backward|backward)_?(pre_)?hook|\.register_hook\(|torch\.optim\.|"
                      r"\.backward\(\)[\s\S]*\.step\(\)")


def code_lines(cell: dict) -> int:
    return sum(1 for line in source(cell).splitlines() if line.strip() and not line.strip().startswith("#"))


def tags(cell: dict) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_visible_code_cells_are_short(path):
    long = [(i, code_lines(c)) for i, c in enumerate(code_cells(load(path)))
            if code_lines(c) > MAX_VISIBLE_LINES and not tags(c) & HIDDEN]
    assert not long, f"{path.name}: visible code cells over {MAX_VISIBLE_LINES} lines (index, lines): {long}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_hooks_optimizers_and_loops_only_where_taught(path):
    found = [i for i, c in enumerate(code_cells(load(path))) if PLUMBING.search(source(c)) and "teaches" not in tags(c)]
    assert not found, (f"{path.name}: code cells {found} register hooks, build an optimizer or run a training loop; "
                       "use helpers (hooks.capture, train.fit with a callback) or tag a cell that teaches it 'teaches'")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapters_stay_thin(path):
    total = sum(code_lines(c) for c in code_cells(load(path)))
    assert total <= MAX_CHAPTER_CODE, f"{path.name} holds {total} code lines, over {MAX_CHAPTER_CODE}"
