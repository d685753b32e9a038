"""What the site tests and scripts share: the pages of the book and the repository URL."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "_build" / "html"


def config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))


def toc_files() -> list[str]:
    """Every document of _toc.yml, root first, without extension (e.g. 'chapters/00_toolkit')."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]]
    for part in toc.get("parts", []):
        for chapter in part.get("chapters", []):
            files.append(chapter["file"])
            files.extend(section["file"] for section in chapter.get("sections", []))
    return files


def chapter_files() -> list[str]:
    """The chapter notebooks of the toc (documents under chapters/)."""
    return [f for f in toc_files() if f.startswith("chapters/")]


def colab_url(chapter: str) -> str:
    """The Colab link a chapter's launch button must carry, from _config.yml."""
    repo = config()["repository"]
    slug = repo["url"].rstrip("/").removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{slug}/blob/{repo['branch']}/{chapter}.ipynb"
