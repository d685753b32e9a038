"""The built site as a reader meets it, in headless Chromium: every page of the toc loads
with no console errors and no failed local requests, every image has loaded, every
explorer answers each control, the search finds each chapter, and each chapter's Colab
button points at its notebook on the configured branch."""

from __future__ import annotations

import functools
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from .browser import browser_page, require_browser, serve
from .site import BOOK, chapter_files, colab_url, toc_files
from .test_browser_explorer import _exercise_controls

pytestmark = pytest.mark.skipif(not (BOOK / "index.html").exists(), reason="the book is not built (make book)")


@pytest.fixture(scope="module")
def site():
    executable = require_browser()
    with serve(BOOK) as base, browser_page(executable) as (page, errors):
        yield base, page, errors


@pytest.mark.parametrize("document", toc_files())
def test_page_loads_cleanly_with_images_and_working_explorers(site, document):
    base, page, errors = site
    errors.clear()
    page.goto(f"{base}/{document}.html")
    page.wait_for_load_state("load")
    broken = page.evaluate(
        "Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 80))"
    )
    assert broken == [], f"images that did not load: {broken}"
    explorers = page.locator(".tb-explorer")
    for i in range(explorers.count()):
        explorers.nth(i).scroll_into_view_if_needed()
        scoped = ExplorerScope(page, i)
        assert _exercise_controls(scoped) >= 1
    assert errors == [], errors


class ExplorerScope:
    """A page-like view of the i-th explorer, so the explorer test's helper can drive it."""

    def __init__(self, page, index: int) -> None:
        self._root = page.locator(".tb-explorer").nth(index)

    def locator(self, selector: str):
        if selector.startswith(".tb-explorer"):
            rest = selector.removeprefix(".tb-explorer").strip()
            return self._root.locator(rest) if rest else self._root
        return self._root.locator(selector)


@pytest.mark.parametrize("chapter", chapter_files())
def test_colab_button_points_at_the_notebook_on_main(site, chapter):
    base, page, _ = site
    page.goto(f"{base}/{chapter}.html")
    hrefs = page.eval_on_selector_all("a[href*='colab.research.google.com']", "els => els.map(e => e.href)")
    assert colab_url(chapter) in hrefs, hrefs


def test_header_icons_are_drawn_from_the_web_font(site):
    """The theme's SVG-icon script is stubbed out at build (_ext/trainability_site.py); the
    launch, repository and download icons must still be drawn, by the Font Awesome web font."""
    base, page, _ = site
    page.goto(f"{base}/chapters/00_toolkit.html", wait_until="networkidle")
    icons = page.evaluate("""() => ['fa-rocket', 'fa-github', 'fa-download'].map(name => {
        const el = document.querySelector('i.' + name);
        if (!el) return [name, 'missing'];
        const before = getComputedStyle(el, '::before');
        const box = el.getBoundingClientRect();
        return [name, before.content, before.fontFamily, box.width];
    })""")
    for name, *style in icons:
        assert style != ["missing"], f"no <i class='{name}'> icon on the page"
        content, family, width = style
        assert content not in ("", "none", "normal") and "Font Awesome" in family and width > 0, (name, style)
    loaded = page.evaluate("[...document.fonts].filter(f => f.status === 'loaded').map(f => f.family)")
    assert any("Font Awesome" in family for family in loaded), loaded


def _title_words(chapter: str) -> list[str]:
    notebook = json.loads((BOOK.parent.parent / f"{chapter}.ipynb").read_text(encoding="utf-8"))
    first = "".join(notebook["cells"][0]["source"])
    title = re.search(r"^#\s+(.+)$", first, re.M).group(1)
    return [w for w in re.findall(r"[A-Za-z]{5,}", title)]


@pytest.mark.parametrize("chapter", chapter_files())
def test_search_finds_each_chapter(site, chapter):
    base, page, _ = site
    word = _title_words(chapter)[0].lower()
    page.goto(f"{base}/search.html?q={word}")
    page.wait_for_selector("#search-results ul.search li", timeout=20000)
    links = page.eval_on_selector_all("#search-results ul.search li a", "els => els.map(e => e.href)")
    assert any(chapter in unquote(link) for link in links), (word, links)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.hrefs.append(attrs["href"])


@functools.cache
def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return parser


#: hosts an external link of the book may point to: references and the book's own services
EXTERNAL_HOSTS = (
    "github.com", "colab.research.google.com", "doi.org", "arxiv.org", "proceedings.mlr.press",
    "pytorch.org", "docs.pytorch.org", "jupyterbook.org", "www.sphinx-doc.org", "sphinx-doc.org",
    "pydata-sphinx-theme.readthedocs.io", "sphinx-book-theme.readthedocs.io", "ebp.jupyterbook.org",
    "papers.nips.cc", "proceedings.neurips.cc", "openreview.net", "www.jmlr.org", "jmlr.org",
    "scikit-learn.org", "seaborn.pydata.org",
    "stats.stackexchange.com",  # the sources page: the thread a source translates
)


def test_internal_links_and_anchors_resolve():
    broken, external = [], set()
    for document in toc_files():
        page = BOOK / f"{document}.html"
        for href in _parse(page).hrefs:
            url = urlparse(href)
            if url.scheme in ("http", "https"):
                external.add(href)
                continue
            if url.scheme or href.startswith(("mailto:", "javascript:")):
                continue
            target = (page.parent / unquote(url.path)).resolve() if url.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{document}: {href} (missing file)")
            elif url.fragment and target.suffix == ".html" and url.fragment not in _parse(target).ids:
                broken.append(f"{document}: {href} (missing anchor)")
    assert broken == [], broken
    strangers = sorted(h for h in external if urlparse(h).hostname not in EXTERNAL_HOSTS)
    assert strangers == [], f"external links to hosts that are not references: {strangers}"


def test_formulas_render_offline_from_a_local_copy(site):
    """MathJax ships with the site: opened from file:// with every network request refused, the
    chapters' formulas are typeset (as SVG) and no script is fetched from elsewhere."""
    _, page, _ = site
    remote: list[str] = []

    def local_only(route):
        if route.request.url.startswith(("file:", "data:")):
            route.continue_()
        else:
            remote.append(route.request.url)
            route.abort()

    page.route("**/*", local_only)
    try:
        page.goto((BOOK / "chapters" / "02_initialization.html").as_uri())
        page.wait_for_function("() => document.querySelectorAll('mjx-container svg').length > 5", timeout=20_000)
        assert not [url for url in remote if "mathjax" in url.lower()], remote
        assert page.evaluate("() => document.querySelectorAll('mjx-merror').length") == 0
    finally:
        page.unroute("**/*")


def test_no_page_names_a_source_by_our_file_number():
    """Sources are named so a reader can find them (reference/sources), never "source 002"."""
    numbered = {str(p.relative_to(BOOK)): sorted(set(re.findall(r"[Ss]ource[ _]0\d\d", p.read_text(errors="replace"))))
                for p in BOOK.rglob("*.html")}
    assert not {page: hits for page, hits in numbered.items() if hits}


def test_claims_page_lists_every_claim_of_every_chapter():
    """The claims page shows, per chapter, every claim of that chapter's ledger, none failing."""
    ledgers = sorted((BOOK.parent / "claims").glob("*.json"))
    assert {p.stem for p in ledgers} >= set(Path(c).name for c in chapter_files())
    page = (BOOK / "reference" / "claims.html").read_text()
    total = sum(len(json.loads(p.read_text())["claims"]) for p in ledgers)
    assert f"{total} claims in {len(ledgers)} chapters; {total} hold, 0 fail" in page
    assert "FAILS" not in page
