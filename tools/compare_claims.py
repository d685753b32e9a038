"""Compare two claims ledgers (directories of <chapter>.json, as the book build writes them).

    python tools/compare_claims.py BEFORE_DIR AFTER_DIR [CHAPTER ...]

Lists, per chapter, the claims that disappeared, the new ones, the ones that fail, and the
thinnest margins; exits 1 if a claim fails or disappears. Used to show that a refactoring
left every claim of the book standing.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers import claims  # noqa: E402


def main(before: str, after: str, chapters: list[str]) -> int:
    old, new = claims.read(before), claims.read(after)
    if chapters:
        old, new = old[old.chapter.isin(chapters)], new[new.chapter.isin(chapters)]
    bad = 0
    for chapter in sorted(set(old.chapter) | set(new.chapter)):
        a, b = old[old.chapter == chapter], new[new.chapter == chapter]
        gone = sorted(set(a.statement) - set(b.statement))
        added = sorted(set(b.statement) - set(a.statement))
        failing = b[~b.holds.astype(bool)]
        print(f"== {chapter}: {len(a)} claims before, {len(b)} after, {len(failing)} failing")
        for label, items in (("gone", gone), ("new", added), ("FAILS", list(failing.statement))):
            for item in items:
                print(f"  {label}: {item}")
        bad += len(gone) + len(failing)
        if len(b):
            thin = b.sort_values("margin").head(3)
            for row in thin.itertuples():
                print(f"  thinnest: {row.margin:.3f}  {row.statement}")
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
