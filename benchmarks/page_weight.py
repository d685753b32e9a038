"""Print each page's total transferred size, as a browser loads it from a local server.

Every request the page makes to the site is counted (HTML, CSS, JS, fonts, images), as
raw bytes (what this local server sends) and gzip-compressed (what a compressing host such
as GitHub Pages sends). Requests to other hosts (the MathJax CDN) fail here, offline, and
are listed apart. Budget: every chapter page at most 3 MB transferred.

Run after ``make book``: ``.venv/bin/python benchmarks/page_weight.py``
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.browser import browser_page, chromium_path, serve  # noqa: E402
from tests.site import BOOK, toc_files  # noqa: E402


def main() -> None:
    executable = chromium_path()
    if executable is None:
        sys.exit("Chromium is not installed (apt-get install chromium)")
    print(f"{'page':<40}{'requests':>9}{'raw MB':>8}{'gzip MB':>9}   external requests (not counted)")
    with serve(BOOK) as base, browser_page(executable) as (page, _):
        for document in toc_files():
            sizes: dict[str, int] = {}
            external: list[str] = []

            def on_response(response, sizes=sizes):
                if response.url.startswith(base):
                    try:
                        body = response.body()
                        sizes[response.url] = (len(body), len(gzip.compress(body, 6)))
                    except Exception:
                        sizes[response.url] = (0, 0)

            page.on("response", on_response)
            page.on("requestfailed", lambda r, ext=external: not r.url.startswith(base) and ext.append(r.url))
            page.goto(f"{base}/{document}.html", wait_until="networkidle")
            page.remove_listener("response", on_response)
            raw = sum(r for r, _ in sizes.values())
            packed = sum(g for _, g in sizes.values())
            hosts = sorted({u.split("/")[2] for u in external})
            flag = "  OVER 3 MB" if document.startswith("chapters/") and packed > 3e6 else ""
            print(f"{document:<40}{len(sizes):>9}{raw / 1e6:>8.2f}{packed / 1e6:>9.2f}   {', '.join(hosts)}{flag}")


if __name__ == "__main__":
    main()
