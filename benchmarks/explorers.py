"""Measure every explorer of the book against its budgets.

For each chapter given (default: all chapters in _toc.yml), execute its code cells in
this process with ``helpers.widgets.explore`` wrapped, and for each explorer print

- the time to precompute its whole grid (the static form; budget: 30 s for the toolkit),
- the bytes it adds to its page (budget: 2 MB),
- the time one live control change takes to redraw, for settings not yet memoized
  (median and worst over the moves that visit up to five settings; budget: 1 s), and for a
  memoized one.

Each chapter runs in its own process, as each has its own kernel in the book.

Run: ``.venv/bin/python benchmarks/explorers.py [chapters/00_toolkit.ipynb ...]``
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import nbformat  # noqa: E402
import yaml  # noqa: E402

import helpers.widgets as widgets  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def chapters_from_toc() -> list[Path]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [c["file"] for part in toc.get("parts", []) for c in part.get("chapters", [])]
    return [ROOT / f"{f}.ipynb" for f in files if (ROOT / f"{f}.ipynb").exists()]


def measure(notebook: Path) -> list[dict]:
    results: list[dict] = []
    original = widgets.explore

    def recording_explore(fn, controls, **kwargs):
        kwargs = {k: v for k, v in kwargs.items() if k != "mode"}
        static = original(fn, controls, mode="static", **kwargs)
        live = original(fn, controls, mode="live", **kwargs)  # renders the first setting
        settings = list(itertools.product(*controls.values()))[1:6]
        times = []  # one entry per control a reader moves: a redraw for a setting not seen yet
        for setting in settings:
            for name, value in zip(controls, setting):
                if live.controls[name].value == value:
                    continue
                start = time.perf_counter()
                live.controls[name].value = value
                times.append(time.perf_counter() - start)
        first = dict(zip(controls, next(iter(itertools.product(*controls.values())))))
        start = time.perf_counter()
        for name, value in first.items():
            live.controls[name].value = value
        memoized = time.perf_counter() - start
        results.append({
            "chapter": notebook.stem, "title": kwargs.get("title") or "", "settings": len(static.frames),
            "precompute_s": static.seconds, "page_bytes": static.size_bytes(),
            "live_median_s": statistics.median(times) if times else float("nan"),
            "live_worst_s": max(times) if times else float("nan"), "live_memoized_s": memoized,
        })
        return static

    widgets.explore = recording_explore
    cwd = os.getcwd()
    try:
        os.chdir(notebook.parent)
        nb = nbformat.read(notebook, as_version=4)
        namespace: dict = {"__name__": "__main__"}
        for cell in nb.cells:
            if cell.cell_type == "code" and "google.colab" not in cell.source:
                exec(compile(cell.source, f"{notebook.name}", "exec"), namespace)
    finally:
        os.chdir(cwd)
        widgets.explore = original
    return results


def main(paths: list[str]) -> None:
    """Each chapter runs in a fresh process, as in the book (one kernel per chapter): chapters
    set process-wide torch state (threads, flush-denormal) that must not leak into the next."""
    if paths[:1] == ["--child"]:
        for r in measure(Path(paths[1]).resolve()):
            print("ROW\t" + json.dumps(r), flush=True)
        return
    notebooks = [Path(p).resolve() for p in paths] or chapters_from_toc()
    print(f"{'chapter':<26}{'explorer':<44}{'grid':>5}{'precompute s':>14}{'page MB':>9}"
          f"{'live median s':>15}{'live worst s':>14}{'memoized s':>12}")
    for notebook in notebooks:
        child = subprocess.run([sys.executable, __file__, "--child", str(notebook)],
                               capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
        if child.returncode != 0:
            sys.exit(f"{notebook.name} failed:\n{child.stderr[-3000:]}")
        for line in child.stdout.splitlines():
            if not line.startswith("ROW\t"):
                continue
            r = json.loads(line[4:])
            print(f"{r['chapter']:<26}{r['title'][:42]:<44}{r['settings']:>5}{r['precompute_s']:>14.2f}"
                  f"{r['page_bytes'] / 1e6:>9.2f}{r['live_median_s']:>15.3f}{r['live_worst_s']:>14.3f}"
                  f"{r['live_memoized_s']:>12.4f}")


if __name__ == "__main__":
    main(sys.argv[1:])
