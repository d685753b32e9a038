"""Execute the book's chapters in parallel into the build's execution cache.

`jupyter-book build` executes notebooks one after another while Sphinx reads them. On a
2-core machine that wastes a core, and a cold build of six chapters of up to two minutes each
would not fit its 5-minute budget. This script runs first (``make book`` calls it): it adds
every chapter to the jupyter-cache project that myst-nb uses (``_build/.jupyter_cache``) and
executes the ones whose code has no cached execution, one per core, longest first. The Sphinx
build then finds every chapter in the cache. A chapter that raises is not cached: the build
executes it again, reports the error and fails, as before.

The environment (``TRAINABILITY_BUILD``, ``TRAINABILITY_CLAIMS_DIR``) is inherited by the kernels.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import time
from pathlib import Path

ROOT = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]
CACHE = ROOT / "_build" / ".jupyter_cache"
TIMEOUT = 300  # seconds per cell, as _config.yml's execute.timeout


def execute_one(uri: str) -> tuple[str, float, str | None]:
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn
    from jupyter_cache.cache.db import NbProjectRecord
    from jupyter_cache.executors.utils import single_nb_execution

    cache = get_cache(str(CACHE))
    record = cache.get_project_record(uri)
    notebook = cache.get_project_notebook(record.pk).nb
    result = single_nb_execution(notebook, cwd=str(Path(uri).parent), timeout=TIMEOUT, allow_errors=False,
                                 meta_override=True)
    if result.err is not None:
        NbProjectRecord.set_traceback(uri, result.exc_string, cache.db)
        return uri, result.time, f"{type(result.err).__name__}: {str(result.err).strip().splitlines()[-1][:200]}"
    cache.cache_notebook_bundle(CacheBundleIn(notebook, uri, data={"execution_seconds": result.time}),
                                check_validity=False, overwrite=True)
    return uri, result.time, None


def main() -> int:
    import yaml
    from jupyter_cache import get_cache

    logging.getLogger("traitlets").setLevel(logging.ERROR)
    os.environ.setdefault("TRAINABILITY_BUILD", "1")
    os.environ.setdefault("TRAINABILITY_CLAIMS_DIR", str(ROOT / "_build" / "claims"))
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    entries = toc.get("chapters", []) + [e for part in toc.get("parts", []) for e in part.get("chapters", [])]
    files = [entry["file"] for entry in entries]
    chapters = [ROOT / f"{f}.ipynb" for f in files if (ROOT / f"{f}.ipynb").exists()]
    cache = get_cache(str(CACHE))
    for chapter in chapters:
        cache.add_nb_to_project(str(chapter))
    todo = [r.uri for r in cache.list_unexecuted([str(c) for c in chapters])]
    if not todo:
        print(f"execute: all {len(chapters)} chapters are cached")
        return 0
    todo.sort(key=lambda uri: -Path(uri).stat().st_size)  # the largest notebooks first
    workers = min(len(todo), os.cpu_count() or 1)
    print(f"execute: {len(todo)} of {len(chapters)} chapters on {workers} processes", flush=True)
    start = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        for uri, seconds, error in pool.imap_unordered(execute_one, todo):
            print(f"  {Path(uri).name:32s} {seconds:6.1f} s  {'ERROR ' + error if error else 'ok'}", flush=True)
    print(f"execute: {time.perf_counter() - start:.0f} s wall")
    return 0  # failures are reported again, and fail the build, when jupyter-book reads the chapter


if __name__ == "__main__":
    sys.exit(main())
