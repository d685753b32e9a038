"""Small Sphinx fixes for the book's pages (loaded from _config.yml).

- Drop repeated <script> entries: sphinx-thebe registers its configuration script once
  per build phase, and the second copy redeclares a ``const`` and raises a page error.
- Write the images that pages paste from another notebook (``{glue}`` with ``:doc:``).
  myst-nb points such an image at ``_images/<sha256>.png`` but copies it only when the
  source notebook also displays the very same image, so a figure glued with
  ``display=False`` would be a broken image on the landing page.
- Ship MathJax with the site (``_static/mathjax``), so that formulas render from a local copy of
  the book with the network off. MathJax 3.2 comes from the pinned PyPI package
  ``sphinx-mathjax-offline``; only its SVG build is copied (the SVG output carries its glyphs, so
  no web font has to load, which ``file://`` pages may refuse), with the TeX extensions it loads
  on demand.
- Stub out the theme's ``fontawesome.js`` (1.5 MB, over half of every page's weight). It only
  swaps ``<i class="fa-…">`` icons for SVGs; the theme's stylesheet already draws the same icons
  from the Font Awesome web font, which a page loads only when it shows an icon of that style.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from binascii import a2b_base64
from mimetypes import guess_extension
from pathlib import Path


def _script_key(script) -> tuple:
    attributes = getattr(script, "attributes", {}) or {}
    return (str(getattr(script, "filename", script) or ""), tuple(sorted((k, str(v)) for k, v in attributes.items())))


def dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        key = _script_key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def write_glued_images(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    glue_folder = Path(app.env.mystnb_config.output_folder)
    image_folder = Path(app.builder.outdir) / app.builder.imagedir
    for glue_file in glue_folder.rglob("*.glue.json"):
        for output in json.loads(glue_file.read_text()).values():
            for mime_type, payload in output.get("data", {}).items():
                if not mime_type.startswith("image/") or mime_type == "image/svg+xml":
                    continue
                data = a2b_base64(payload)
                extension = guess_extension(mime_type) or "." + mime_type.rsplit("/")[-1]
                target = image_folder / f"{hashlib.sha256(data).hexdigest()}{extension}"
                if not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data)


MATHJAX_PATH = "mathjax/tex-svg.js"  # relative to _static; _config.yml's sphinx.config sets the same
MATHJAX_PARTS = ("tex-svg.js", "input/tex/extensions", "output/svg")


def copy_mathjax(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    from importlib.metadata import distribution

    from sphinx.util.fileutil import copy_asset

    source = Path(str(distribution("sphinx-mathjax-offline").locate_file("sphinx-mathjax-offline/static/mathjax")))
    target = Path(app.builder.outdir) / "_static" / "mathjax"
    for part in MATHJAX_PARTS:
        if (source / part).is_dir():
            copy_asset(str(source / part), str(target / part))
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / part, target / part)


FONTAWESOME_STUB = "/* Icons come from the Font Awesome web font in the theme CSS (_ext/trainability_site.py). */\n"


def stub_fontawesome_script(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    script = Path(app.builder.outdir) / "_static" / "scripts" / "fontawesome.js"
    if script.exists() and script.read_text(errors="replace") != FONTAWESOME_STUB:
        script.write_text(FONTAWESOME_STUB)
        script.with_name("fontawesome.js.map").unlink(missing_ok=True)


def setup(app):
    app.connect("html-page-context", dedupe_scripts, priority=900)
    app.connect("build-finished", write_glued_images)
    app.connect("build-finished", stub_fontawesome_script)
    app.connect("build-finished", copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
