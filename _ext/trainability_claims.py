"""The claims page and an honest execution page (loaded from _config.yml).

- Every chapter checks its claims through :class:`helpers.claims.Ledger`, which writes
  ``<chapter>.json`` to ``$TRAINABILITY_CLAIMS_DIR``. This extension sets that variable (to
  ``_build/claims``) before any notebook runs, so the kernels that myst-nb starts inherit it.
- The ``{claims-ledger}`` directive turns those files into the claims page: every claim with its
  measured value(s), threshold and margin, the thinnest margins first, and the machine that
  measured them. The page is read after every chapter (and again on every build), so it always
  shows what this build's chapters measured.
- The execution-statistics table (``{nb-exec-table}``) gets a column with the claims that held,
  and a chapter counts as passed only if no cell showed an error and every claim held.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from docutils import nodes
from sphinx.addnodes import pending_xref
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

DIR_ENV = "TRAINABILITY_CLAIMS_DIR"
LATE_DOCS = ("reference/execution", "reference/claims")  # read after the chapters they report on
logger = logging.getLogger(__name__)


def claims_dir(app) -> Path:
    return Path(os.environ.get(DIR_ENV) or Path(app.srcdir) / "_build" / "claims")


def set_claims_dir(app, config) -> None:
    os.environ.setdefault(DIR_ENV, str(Path(app.srcdir) / "_build" / "claims"))


def load_ledgers(app) -> dict[str, dict]:
    ledgers = {}
    for path in sorted(claims_dir(app).glob("*.json")):
        ledger = json.loads(path.read_text())
        ledgers[ledger["chapter"]] = ledger
    return ledgers


def read_late(app, env, docnames: list[str]) -> None:
    for docname in LATE_DOCS:
        if docname in env.found_docs:
            if docname in docnames:
                docnames.remove(docname)
            docnames.append(docname)


def always_outdated(app, env, added, changed, removed) -> list[str]:
    return [d for d in LATE_DOCS if d in env.found_docs]


# -- the claims page ----------------------------------------------------------------------------
def _number(value) -> str:
    if isinstance(value, str):
        return value
    return f"{value:.3g}" if math.isfinite(value) else str(value)


def measured(claim: dict) -> str:
    values = claim["values"]
    if claim["kind"] == "count":
        return f"{int(values[0])}"
    if len(values) == 1:
        return _number(values[0])
    if claim["kind"] == "bound" and len(values) > 4:
        return f"{_number(min(values))} … {_number(max(values))} ({len(values)} values)"
    return ", ".join(_number(v) for v in values)


def margin_text(claim: dict) -> str:
    if not claim["holds"]:
        return "FAILS"
    if claim["kind"] == "exact":
        return "exact"
    if claim["kind"] == "count":
        n = int(claim["threshold"].rsplit(" ", 1)[-1])
        spare = round(claim["margin"] * n)
        return f"{spare} of {n} to spare"
    return f"{claim['margin']:.0%}" if claim["margin"] < 100 else f"{claim['margin']:.3g}×"


def table(header: list[str], rows: list[list], widths: list[int]) -> nodes.table:
    node = nodes.table(classes=["claims-table", "colwidths-given"])
    group = nodes.tgroup(cols=len(header))
    node += group
    for width in widths:
        group += nodes.colspec(colwidth=width)
    head = nodes.thead()
    group += head
    row = nodes.row()
    for text in header:
        row += nodes.entry("", nodes.paragraph(text=text))
    head += row
    body = nodes.tbody()
    group += body
    for cells in rows:
        row = nodes.row()
        for cell in cells:
            entry = nodes.entry()
            entry += cell if isinstance(cell, nodes.Node) else nodes.paragraph(text=str(cell))
            row += entry
        body += row
    return node


def chapter_link(docname: str, chapter: str, title: str) -> nodes.paragraph:
    ref = pending_xref(refdoc=docname, reftarget=f"/chapters/{chapter}", reftype="doc", refdomain="std",
                       refexplicit=True, refwarn=True)
    ref += nodes.inline(text=title)
    paragraph = nodes.paragraph()
    paragraph += ref
    return paragraph


class ClaimsLedger(SphinxDirective):
    """``{claims-ledger}``: every claim of every chapter, as measured by this build."""

    def run(self) -> list[nodes.Node]:
        chapters = sorted(d for d in self.env.found_docs if d.startswith("chapters/"))
        ledgers = load_ledgers(self.env.app)
        missing = [d for d in chapters if d.split("/", 1)[1] not in ledgers]
        if missing:
            logger.warning(f"claims page: no claims ledger for {', '.join(missing)} in {claims_dir(self.env.app)}"
                           " (were the chapters executed by this build?)", location=self.get_location())
        claims = [c for d in chapters if d.split("/", 1)[1] in ledgers for c in ledgers[d.split("/", 1)[1]]["claims"]]
        failing = [c for c in claims if not c["holds"]]
        for claim in failing:
            logger.warning(f"claims page: claim failed [{claim['chapter']}] {claim['statement']}",
                           location=self.get_location())
        titles = {d.split("/", 1)[1]: (self.env.titles[d].astext() if d in self.env.titles else d) for d in chapters}
        machines = {json.dumps(ledgers[c]["machine"], sort_keys=True) for c in ledgers}
        machine = json.loads(sorted(machines)[0]) if machines else {}
        out: list[nodes.Node] = []
        summary = nodes.paragraph()
        summary += nodes.strong(text=f"{len(claims)} claims in {len(ledgers)} chapters; "
                                     f"{len(claims) - len(failing)} hold, {len(failing)} fail. ")
        if machine:
            summary += nodes.Text(f"Measured by this build on {machine['cpu']}, PyTorch {machine['torch']}, "
                                  f"ATen kernels {machine['kernels']}, float path {machine['settings']}.")
        out.append(summary)

        bounds = sorted((c for c in claims if c["kind"] != "exact"), key=lambda c: c["margin"])
        out.append(nodes.rubric(text="The thinnest margins"))
        out.append(table(["chapter", "claim", "measured", "threshold", "margin"],
                         [[chapter_link(self.env.docname, c["chapter"], titles[c["chapter"]]), c["statement"],
                           measured(c), c["threshold"], margin_text(c)] for c in bounds[:10]],
                         [18, 46, 14, 12, 10]))
        for chapter, ledger in sorted(ledgers.items()):
            if chapter not in titles:
                continue
            out.append(nodes.rubric(text=titles[chapter]))
            out.append(chapter_link(self.env.docname, chapter, f"{len(ledger['claims'])} claims checked in "
                                                               f"“{titles[chapter]}”"))
            out.append(table(["claim", "measured", "threshold", "margin"],
                             [[c["statement"], measured(c), c["threshold"], margin_text(c)] for c in ledger["claims"]],
                             [56, 18, 14, 12]))
        return out


# -- the execution page -------------------------------------------------------------------------
def _set_status(app, doctree) -> None:
    """A notebook passes only if no cell shows an error and every claim it checked held."""
    from myst_nb.sphinx_ext import NbMetadataCollector

    data = NbMetadataCollector.get_doc_data(app.env).get(app.env.docname, {}).get("exec_data")
    if not data:
        return
    errors = sum(1 for node in doctree.findall(nodes.literal_block) if "traceback" in node.get("classes", []))
    ledger = load_ledgers(app).get(Path(app.env.docname).name) if app.env.docname.startswith("chapters/") else None
    held = sum(c["holds"] for c in ledger["claims"]) if ledger else 0
    total = len(ledger["claims"]) if ledger else 0
    data["claims"] = f"{held} of {total}" if ledger else "–"
    problems = ([f"{errors} cell(s) raised"] if errors else []) + ([f"{total - held} claim(s) failed"]
                                                                    if held < total else [])
    if problems:
        data["succeeded"] = False
        data["error"] = "; ".join(([data["error"]] if data.get("error") else []) + problems)


def fill_claims_column(app, env) -> None:
    """Docs read before this extension existed (a pickled environment) get an empty cell."""
    from myst_nb.sphinx_ext import NbMetadataCollector

    for doc in NbMetadataCollector.get_doc_data(env).values():
        if doc.get("exec_data"):
            doc["exec_data"].setdefault("claims", "–")


def add_claims_column() -> None:
    from myst_nb.ext import execution_tables

    execution_tables._key2header.setdefault("claims", "Claims held")
    execution_tables._key2transform.setdefault("claims", str)
    # words, not ✅/❌: the emoji is a blank box where no emoji font is installed
    execution_tables._key2transform["succeeded"] = lambda ok: "passed" if ok is True else "FAILED"


def setup(app):
    add_claims_column()
    app.connect("config-inited", set_claims_dir)
    app.connect("env-before-read-docs", read_late)
    app.connect("env-get-outdated", always_outdated)
    app.connect("doctree-read", _set_status)
    app.connect("env-updated", fill_claims_column)
    app.add_directive("claims-ledger", ClaimsLedger)
    return {"parallel_read_safe": False, "parallel_write_safe": True}
