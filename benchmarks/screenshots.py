"""Write a PNG of every page of the book at desktop (1280 px) and phone (390 px) widths
into ``_build/screenshots/``, full page, to look at what a reader sees.

Run after ``make book``: ``.venv/bin/python benchmarks/screenshots.py``
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.browser import browser_page, chromium_path, serve  # noqa: E402
from tests.site import BOOK, toc_files  # noqa: E402

WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}


def main() -> None:
    executable = chromium_path()
    if executable is None:
        sys.exit("Chromium is not installed (apt-get install chromium)")
    out = BOOK.parent / "screenshots"
    out.mkdir(exist_ok=True)
    with serve(BOOK) as base:
        for label, (width, height) in WIDTHS.items():
            with browser_page(executable, width=width, height=height) as (page, _):
                for document in toc_files():
                    page.goto(f"{base}/{document}.html", wait_until="load")
                    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                    path = out / f"{document.replace('/', '_')}-{label}.png"
                    page.screenshot(path=str(path), full_page=True)
                    note = f"  horizontal overflow {overflow}px" if overflow > 0 else ""
                    print(f"{path.relative_to(BOOK.parent.parent)}{note}")


if __name__ == "__main__":
    main()
