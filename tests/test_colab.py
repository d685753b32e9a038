"""The Colab path: each chapter's install cell, run in a fresh virtual environment that
lacks the helpers (as Colab does), with the repository URL pointed at this checkout, installs
a working package; then the chapter's imports and first experiment cell run.

The fresh environment sees the pinned third-party packages of .venv (as Colab has its
own torch, pandas and so on) but not the helpers; pip runs offline (PIP_NO_INDEX=1).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from .site import ROOT, chapter_files, config

RUNNER = textwrap.dedent(
    """
    import json, sys, types
    cells = json.load(open(sys.argv[1]))
    sys.modules["google.colab"] = types.ModuleType("google.colab")  # what Colab looks like
    try:
        import helpers  # noqa: F401
        raise SystemExit("helpers importable before the install cell ran")
    except ImportError:
        pass
    exec(cells[0], {"__name__": "__main__"})
    del sys.modules["google.colab"]
    import helpers
    print("HELPERS", helpers.__file__)
    """
)


def _cells_to_first_experiment(notebook: Path) -> list[str]:
    """The install cell, then the code cells up to and including the first that checks a claim."""
    cells = [c for c in json.loads(notebook.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]
    sources = ["".join(c["source"]) for c in cells]
    chosen = [sources[0]]
    for source in sources[1:]:
        chosen.append(source)
        if re.search(r"claims\.(check|at_least|exact)\(", source):
            break
    return chosen


@pytest.fixture(scope="module")
def colab(tmp_path_factory):
    """A fresh environment in which a chapter's install cell has run (once: the cells are identical)."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = config()["repository"]
    install_cells = {_cells_to_first_experiment(ROOT / f"{c}.ipynb")[0] for c in chapter_files()}
    assert len(install_cells) == 1, "chapters' install cells differ"
    install = install_cells.pop()
    assert repo["url"] in install
    tmp = tmp_path_factory.mktemp("colab")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    fresh_site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                check=True, capture_output=True, text=True).stdout.strip()
    # the third-party packages (and pip) of .venv, as a plain path: its .pth files (the
    # editable install of the helpers among them) are not processed, so helpers stays absent
    Path(fresh_site, "zz_thirdparty.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0", "MPLBACKEND": "Agg",
           "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)
    (tmp / "runner.py").write_text(RUNNER)
    (tmp / "install.json").write_text(json.dumps([install.replace(repo["url"], ROOT.as_uri())]))
    result = subprocess.run([python, str(tmp / "runner.py"), str(tmp / "install.json")], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    installed = next(line for line in result.stdout.splitlines() if line.startswith("HELPERS"))
    assert str(venv) in installed, f"helpers were not installed into the fresh environment: {installed}"
    return python, env, tmp


@pytest.mark.parametrize("chapter", chapter_files())
def test_install_cell_gives_a_working_chapter(colab, chapter):
    python, env, tmp = colab
    cells = _cells_to_first_experiment(ROOT / f"{chapter}.ipynb")[1:]
    script = tmp / f"{Path(chapter).name}.py"
    script.write_text("\n\n".join(cells))
    result = subprocess.run([python, str(script)], cwd=ROOT / "chapters", env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    check = subprocess.run([python, "-c", "import helpers; print(helpers.__file__)"], env=env, cwd=tmp,
                           capture_output=True, text=True, check=True)
    assert str(tmp) in check.stdout, check.stdout
