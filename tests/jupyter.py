"""Real Jupyter servers for the browser tests of live explorers.

:func:`jupyter_server` starts one on 127.0.0.1 (a free port, a random token, no browser, a
temporary root directory, its own config/data/runtime directories so no user setting leaks in)
and kills it at the end. Two generations are served:

- ``"lab"``: jupyter_server from ``.venv`` with JupyterLab 4 and Notebook 7 (ipywidgets 8);
- ``"classic"``: classic Notebook 6.5 from ``.venv-widgets7`` (ipywidgets 7.7.1, Colab's widget
  versions; ``make widgets7`` creates it).

Without that environment the classic tests are skipped with the reason, unless
``REQUIRE_BROWSER=1`` (set by CI), where they fail, as :func:`tests.browser.require_browser` does.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WIDGETS7_PYTHON = ROOT / ".venv-widgets7" / "bin" / "python"
STARTUP_TIMEOUT = 60  # seconds


@dataclass
class Server:
    kind: str
    url: str  # base URL, no trailing slash
    token: str
    root: Path  # the directory it serves
    log: Path

    def _api(self, path: str, method: str = "GET"):
        data = b"" if method == "POST" else None
        request = urllib.request.Request(self.page(f"api/{path}"), data=data, method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response) if response.status == 200 else None

    def wait_for_idle_kernel(self, notebook: str, timeout: float = STARTUP_TIMEOUT) -> None:
        """Wait until the kernel of ``notebook`` (a path under the root) is started and idle.

        A kernel that is not idle after half the time is restarted once: on a cold machine the
        classic Notebook's kernel manager has been seen to hang on a first start (its ``ready``
        future never set), which a restart clears; a kernel normally idles within seconds."""
        start = time.monotonic()
        deadline, restarted = start + timeout, False
        while time.monotonic() < deadline:
            try:
                sessions = [s for s in self._api("sessions") if s["path"] == notebook]
            except OSError:  # jupyter_server answers 500 while a kernel is half started
                sessions = []
            if sessions and sessions[0]["kernel"]["execution_state"] == "idle":
                return
            if sessions and not restarted and time.monotonic() - start > timeout / 2:
                restarted = True
                with contextlib.suppress(OSError):
                    self._api(f"kernels/{sessions[0]['kernel']['id']}/restart", method="POST")
            time.sleep(0.25)
        raise TimeoutError(f"no idle kernel for {notebook} within {timeout} s (restarted once: {restarted})")

    def shutdown_kernels(self) -> None:
        """Shut down every kernel session (the server goes on)."""
        for session in self._api("sessions"):
            self._api(f"sessions/{session['id']}", method="DELETE")

    def page(self, path: str) -> str:
        """The URL of ``path`` (e.g. ``lab/tree/x.ipynb``) with the token."""
        sep = "&" if "?" in path else "?"
        return f"{self.url}/{path}{sep}token={self.token}"


def require_widgets7() -> Path:
    """The classic-Notebook environment's Python, or skip (fail under REQUIRE_BROWSER=1)."""
    if not WIDGETS7_PYTHON.exists():
        reason = f"{WIDGETS7_PYTHON.parent.parent.name} is missing (run `make widgets7`)"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    return WIDGETS7_PYTHON


def require_lab() -> None:
    """JupyterLab 4 and Notebook 7 in .venv (requirements.txt), or skip (fail under REQUIRE_BROWSER=1)."""
    missing = [m for m in ("jupyterlab", "notebook") if importlib.util.find_spec(m) is None]
    if missing:
        reason = f"{' and '.join(missing)} not installed in {sys.prefix} (run `make setup`)"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _command(kind: str, port: int, token: str, root: Path) -> list[str]:
    if kind == "lab":
        require_lab()
        # jupyter_server with .venv's extensions: JupyterLab 4 (/lab) and Notebook 7 (/notebooks)
        return [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
                "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
                "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                "--LabApp.extension_manager=readonly", "--allow-root",
                "--ServerApp.jpserver_extensions={'jupyterlab_jupytext': False}"]
    if kind == "classic":
        return [str(require_widgets7()), "-m", "notebook", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
                "--NotebookApp.port_retries=0", f"--NotebookApp.token={token}",
                f"--NotebookApp.notebook_dir={root}", "--NotebookApp.nbserver_extensions={}", "--allow-root"]
    raise ValueError(f"kind={kind!r} must be 'lab' or 'classic'")


@contextlib.contextmanager
def jupyter_server(kind: str, root: Path) -> Iterator[Server]:
    """A Jupyter server of ``kind`` serving ``root``; killed (with its kernels) on exit."""
    home = root.parent / f"{root.name}-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "IPYTHON"))}
    for name, sub in [("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                      ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython"),
                      ("JUPYTERLAB_SETTINGS_DIR", "lab-settings"), ("JUPYTERLAB_WORKSPACES_DIR", "lab-workspaces")]:
        (home / sub).mkdir(parents=True, exist_ok=True)
        env[name] = str(home / sub)
    # JupyterLab: no "get notified about news?" toast, no update check (there is no network)
    notification = home / "lab-settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True, exist_ok=True)
    notification.write_text('{"fetchNews": "false", "checkForUpdates": false}')
    # Jupytext (there for the book's build) is not part of a reader's front end: off, server and page
    page_config = home / "config" / "labconfig" / "page_config.json"
    page_config.parent.mkdir(parents=True, exist_ok=True)
    page_config.write_text('{"disabledExtensions": {"jupyterlab-jupytext": true}}')
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("TRAINABILITY_BUILD", None)
    port, token = free_port(), secrets.token_hex(16)
    log = home / "server.log"
    with open(log, "wb") as out:
        # a session of its own: a server that does not stop is killed with its process group
        process = subprocess.Popen(_command(kind, port, token, root), cwd=root, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(kind, f"http://127.0.0.1:{port}", token, root, log)
    try:
        _wait_until_up(server, process)
        yield server
    finally:
        # the kernels run in sessions of their own: note them before stopping the server, which
        # shuts them down; any that outlives it is killed by its process id
        kernels = _descendants(process.pid)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        for pid, cmdline in kernels.items():
            if _cmdline(pid) == cmdline:  # still the same process
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def _cmdline(pid: int) -> bytes | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None


def _descendants(pid: int) -> dict[int, bytes]:
    """Every descendant of ``pid`` (Linux /proc): process id -> command line."""
    found, todo = {}, [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            with contextlib.suppress(OSError):
                for child in map(int, (task / "children").read_text().split()):
                    if (cmdline := _cmdline(child)) is not None:
                        found[child] = cmdline
                        todo.append(child)
    return found


def _wait_until_up(server: Server, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the {server.kind} server exited ({process.returncode}):\n{server.log.read_text()}")
        try:
            with urllib.request.urlopen(server.page("api/status"), timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the {server.kind} server did not answer within {STARTUP_TIMEOUT} s:\n{server.log.read_text()}")
