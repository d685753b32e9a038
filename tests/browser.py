"""Headless Chromium for the browser tests (Debian's package, driven by Playwright).

No browser is downloaded: Playwright is pointed at the system Chromium. Without one the
tests are skipped with the reason, unless ``REQUIRE_BROWSER=1`` (set by CI), where they fail.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_path() -> str | None:
    """The system Chromium, if installed."""
    for candidate in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "/usr/bin/chromium"):
        if candidate and (path := shutil.which(candidate)):
            return path
    return None


def require_browser() -> str:
    """Return Chromium's path, or skip (fail under REQUIRE_BROWSER=1) with the reason."""
    path = chromium_path()
    reason = None
    if path is None:
        reason = "Chromium is not installed (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "the playwright Python package is not installed"
    if reason:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    return path


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` over HTTP on 127.0.0.1 (an ephemeral port); yield the base URL."""
    handler = functools.partial(QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest's output clean
        pass


@contextlib.contextmanager
def browser_page(executable: str, *, width: int = 1280, height: int = 900) -> Iterator[tuple]:
    """A Playwright page in system Chromium; yields ``(page, errors)``.

    ``errors`` collects console errors, uncaught page errors and failed requests to
    the local site (requests elsewhere fail by design: there is no network).
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            errors: list[str] = []
            page.on("console", lambda m: m.type == "error" and _local_error(m, errors))
            page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: _is_local(r.url) and errors.append(f"failed request: {r.url}"))
            yield page, errors
        finally:
            browser.close()


def _is_local(url: str) -> bool:
    return url.startswith(("http://127.0.0.1", "http://localhost", "file://"))


def _local_error(message, errors: list[str]) -> None:
    location = message.location.get("url", "") if message.location else ""
    if not location or _is_local(location):
        errors.append(f"console error: {message.text} ({location})")
