"""Execute every chapter under floating-point variants and compare the claims' margins.

A claim of the book must hold on any CPU. One bit of difference in a kernel changes a chaotic
training run, so this command executes each chapter again under settings that change torch's
results in the last bit, as another machine would:

- ``kernels=default``: PyTorch's non-vectorised ATen kernels (``ATEN_CPU_CAPABILITY=default``),
  which also change ``torch.randn`` and so the initial weights;
- ``avx2+mkl+onednn``: ATen's AVX2 kernels (a CPU without AVX-512), MKL's conditional
  numerical reproducibility path (``MKL_CBWR=COMPATIBLE``, other sgemm kernels) and oneDNN
  limited to SSE4.1 (other convolution kernels).

The native results are those of the last ``make book`` (``_build/claims``). Each variant run
writes its ledgers to ``_build/variants/<variant>/`` with ``TRAINABILITY_CLAIMS_SOFT=1``, so a
failing claim is recorded and the chapter goes on. The command prints every claim's margin per
variant and the smallest, thinnest first, writes ``_build/variants/margins.csv``, and exits 1 when
a claim fails, a cell raises, or a claim checked natively was never reached under a variant.

Usage::

    python tools/float_variants.py                       # every chapter, every variant
    python tools/float_variants.py --chapters 01 04      # chapters whose name starts so
    python tools/float_variants.py --variants kernels=default --jobs 1
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VARIANTS = {
    "kernels=default": {"ATEN_CPU_CAPABILITY": "default"},
    "avx2+mkl+onednn": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "COMPATIBLE", "ONEDNN_MAX_CPU_ISA": "SSE41"},
}
NATIVE = "native"


def execute(chapter: Path, variant: str, out: Path) -> dict:
    """Execute one chapter under one variant in a fresh kernel; return its time and any error."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    env = {key: value for key, value in os.environ.items()
           if key not in ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA")}
    env.update(VARIANTS.get(variant, {}))
    env.update({"TRAINABILITY_BUILD": "1", "TRAINABILITY_CLAIMS_DIR": str(out), "TRAINABILITY_CLAIMS_SOFT": "1"})
    out.mkdir(parents=True, exist_ok=True)
    notebook = nbformat.read(chapter, as_version=4)
    client = NotebookClient(notebook, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(chapter.parent)}})
    # the kernel inherits this process's environment: set the variant before it starts
    saved = dict(os.environ)
    start, error = time.perf_counter(), None
    try:
        os.environ.clear()
        os.environ.update(env)
        client.execute()
    except CellExecutionError as exc:
        error = str(exc).strip().splitlines()[-1][:300]
    finally:
        os.environ.clear()
        os.environ.update(saved)
    seconds = time.perf_counter() - start
    nbformat.write(notebook, out / chapter.name)
    return {"chapter": chapter.stem, "variant": variant, "seconds": seconds, "error": error}


def run_one(chapter: str, variant: str, out: str) -> None:
    """Child-process entry point: one chapter, one variant; prints a JSON line."""
    print(json.dumps(execute(Path(chapter), variant, Path(out))))


def spawn(chapter: Path, variant: str, out: Path) -> dict:
    # a process per run: the variant's environment must be set before torch is imported
    result = subprocess.run([sys.executable, __file__, "--one", str(chapter), variant, str(out)],
                            capture_output=True, text=True, cwd=ROOT)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode or not lines:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"chapter": chapter.stem, "variant": variant, "seconds": float("nan"), "error": tail[0][:300]}
    return json.loads(lines[-1])


def margins(build: Path, variants: list[str]):
    """One row per claim: the margin natively and under each variant, the smallest, and whether it
    held everywhere (a claim that requires every run, "5 of 5", holds with margin 0)."""
    import pandas as pd

    from helpers import claims

    frames = []
    for variant, folder in [(NATIVE, build / "claims")] + [(v, build / "variants" / v) for v in variants]:
        frame = claims.read(folder) if folder.exists() else claims.to_frame([])
        frames.append(frame.assign(variant=variant))
    every = pd.concat(frames, ignore_index=True)
    exact = every["kind"] == "exact"
    every["margin"] = every["margin"].where(~exact, every["holds"].map({True: math.inf, False: -math.inf}))
    every["holds"] = every["holds"].astype(float)
    keys = ["chapter", "statement"]
    table = every.pivot_table(index=keys, columns="variant", values="margin", aggfunc="min")
    table = table.reindex(columns=[NATIVE] + variants)
    held = every.pivot_table(index=keys, columns="variant", values="holds", aggfunc="min").reindex(
        index=table.index, columns=[NATIVE] + variants)
    table["smallest"] = table.min(axis=1, skipna=False)
    table["holds everywhere"] = (held == 1).all(axis=1)  # a missing variant (NaN) counts as failed
    return table.sort_values(["holds everywhere", "smallest"], na_position="first")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chapters", nargs="*", default=[], help="chapter name prefixes (default: all)")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--build", default=str(ROOT / "_build"))
    parser.add_argument("--one", nargs=3, metavar=("CHAPTER", "VARIANT", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        run_one(*args.one)
        return 0
    build = Path(args.build)
    chapters = sorted(p for p in (ROOT / "chapters").glob("*.ipynb")
                      if not args.chapters or any(p.stem.startswith(c) for c in args.chapters))
    if not chapters:
        parser.error(f"--chapters {args.chapters} matches no chapter in chapters/")
    jobs = [(c, v) for v in args.variants for c in chapters]
    jobs.sort(key=lambda job: -job[0].stat().st_size)  # the longest chapters first: a shorter makespan
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(lambda job: spawn(job[0], job[1], build / "variants" / job[1]), jobs))
    wall = time.perf_counter() - started
    for result in results:
        state = f"ERROR {result['error']}" if result["error"] else "ran"
        print(f"{result['chapter']:28s} {result['variant']:18s} {result['seconds']:6.1f} s  {state}")
    table = margins(build, args.variants)
    names = {c.stem for c in chapters}
    table = table[table.index.get_level_values("chapter").isin(names)]
    table.to_csv(build / "variants" / "margins.csv")
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_colwidth", 70, "display.max_rows", 1000):
        print(f"\n{len(table)} claims; margin per variant (fraction of the threshold; inf: an exact claim that "
              f"holds; negative or missing: fails), thinnest first:")
        print(table.to_string(float_format=lambda v: f"{v:.3g}"))
    failed = table[~table["holds everywhere"]]
    errors = [r for r in results if r["error"]]
    print(f"\n{len(chapters)} chapters × {len(args.variants)} variants in {wall:.0f} s; "
          f"{len(failed)} claims fail or are missing somewhere; {len(errors)} runs raised")
    return 1 if len(failed) or errors else 0


if __name__ == "__main__":
    sys.exit(main())
