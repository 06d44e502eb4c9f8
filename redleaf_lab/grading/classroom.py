"""`redleaf-lab classroom up`: JupyterHub on loopback with dummy students, each with a
JupyterLab server of their own holding the student versions of the labs; with
`course=True` (`--course`), a course machine's hub: Unix accounts through PAM, each
student's server running as that student (the hub runs as root).

Interface: `Hub(users, port, state_dir)` is a context manager: on entry it makes sure the
proxy (npm's configurable-http-proxy) and the student notebooks exist, starts
`jupyterhub -f classroom/jupyterhub_config.py` with the settings in its environment and
waits until the hub answers; on exit it stops the hub, which stops the proxy and every
student's server (JupyterHub's cleanup_servers). `serve(...)` runs one until Ctrl-C.
The configuration itself is classroom/jupyterhub_config.py (a course machine uses it as is).
Ownership: the hub process (its own session) is this object's; the state folder is the
caller's, or a temporary one removed on exit.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from . import course

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "classroom" / "jupyterhub_config.py"
PROXY_PREFIX = ROOT / "build" / "classroom"
PASSWORD = "redleaf"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_proxy(prefix: Path = PROXY_PREFIX) -> Path:
    """configurable-http-proxy from PATH, or installed with npm under `prefix`."""
    found = shutil.which("configurable-http-proxy")
    if found:
        return Path(found)
    binary = prefix / "node_modules" / ".bin" / "configurable-http-proxy"
    if not binary.exists():
        if shutil.which("npm") is None:
            raise ValueError("JupyterHub needs configurable-http-proxy: install node and npm")
        prefix.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix",
                               str(prefix), "configurable-http-proxy@5"],
                              capture_output=True, text=True, timeout=300)
        if proc.returncode != 0 or not binary.exists():
            raise ValueError(f"npm install configurable-http-proxy failed:\n{proc.stderr[-2000:]}")
    return binary


class Hub:
    def __init__(self, users: int = 3, port: int = 8000, state_dir: str | Path | None = None,
                 log: Path | None = None, course: bool = False,
                 allowed: list[str] | None = None, group: str | None = None,
                 python: str | None = None) -> None:
        if not 1 <= users <= 500:
            raise ValueError("--users must be 1..500")
        if course and os.geteuid() != 0:
            raise ValueError("course mode runs each student's server as that student's Unix "
                             "user: start the hub as root")
        if course and not allowed and not group:
            raise ValueError("course mode: name the students (--allowed-users) or their Unix "
                             "group (--group)")
        self.course = course
        self.allowed = list(allowed or [])
        self.group = group
        self.python = python
        self.users = users
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._tmp = None if state_dir else tempfile.TemporaryDirectory(prefix="redleaf-class-")
        self.state = Path(state_dir) if state_dir else Path(self._tmp.name)  # type: ignore[union-attr]
        self.log_path = log or self.state / "jupyterhub.log"
        self.process: subprocess.Popen[bytes] | None = None

    def usernames(self) -> list[str]:
        if self.course:
            return list(self.allowed)
        return [f"student{i}" for i in range(1, self.users + 1)]

    def _mode_env(self) -> dict[str, str]:
        if not self.course:
            return {"REDLEAF_CLASS_MODE": "try"}
        return {"REDLEAF_CLASS_MODE": "course",
                "REDLEAF_CLASS_ALLOWED_USERS": ",".join(self.allowed),
                "REDLEAF_CLASS_GROUP": self.group or "",
                "REDLEAF_CLASS_PYTHON": self.python or sys.executable}

    def __enter__(self) -> Hub:
        labs = self.state / "labs"
        if not list(labs.glob("*.ipynb")):
            course.student_versions(labs)
        env = {**os.environ,
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               "REDLEAF_CLASS_DIR": str(self.state), "REDLEAF_CLASS_USERS": str(self.users),
               "REDLEAF_CLASS_PORT": str(self.port), "REDLEAF_CLASS_LABS": str(labs),
               "REDLEAF_CLASS_PASSWORD": PASSWORD, "REDLEAF_CLASS_PROXY": str(ensure_proxy()),
               "REDLEAF_CLASS_HUB_PORT": str(free_port()),
               "REDLEAF_CLASS_PROXY_API_PORT": str(free_port()), **self._mode_env()}
        env.pop("JUPYTERHUB_API_TOKEN", None)
        self.state.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", "-f", str(CONFIG)], cwd=self.state,
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/hub/api", timeout=2).read()
                return self
            except urllib.error.HTTPError:
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    tail = self.log_path.read_text(errors="replace")[-3000:]
                    self.__exit__(None, None, None)
                    raise RuntimeError(f"the hub did not start:\n{tail}") from None
                time.sleep(0.3)

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)  # the hub stops the proxy and the servers
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self._tmp is not None:
            self._tmp.cleanup()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def serve(users: int, port: int, state_dir: str | None, course: bool = False,
          allowed: list[str] | None = None, group: str | None = None,
          python: str | None = None) -> int:
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the hub as Ctrl-C does
    with Hub(users, port, state_dir, course=course, allowed=allowed, group=group,
             python=python) as hub:
        who = (f"Unix users {', '.join(hub.usernames()) or '-'}"
               + (f" and group {group}" if group else "") + ", their own passwords"
               if course else f"users {', '.join(hub.usernames())}, password {PASSWORD!r}")
        print(f"JupyterHub: {hub.url}/  {who}; state in {hub.state}; Ctrl-C stops it")
        try:
            while hub.process is not None and hub.process.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            print("stopping the hub")
    return 0
