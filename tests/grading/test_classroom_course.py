"""The course mode of the class hub (classroom/jupyterhub_config.py, REDLEAF_CLASS_MODE=
course): two throwaway Unix users log in through the hub's login page in chromium with
their own passwords (PAM), a wrong password is refused, and each one's JupyterLab server
and RedLeaf kernel run as that user, in ~/redleaf-labs/ of their own home, where the
student version of lab 1 was copied for them (owned by them).

The students' interpreter: this checkout's venv links to a Python under /root (mode 700
here), which other users cannot execute; a course machine installs RedLeaf Lab where
students can run it. The test makes such an interpreter: a venv of Debian's
/usr/bin/python3 (same minor version) whose one .pth file adds this venv's site-packages,
in a world-readable temporary folder, with the "RedLeaf Lab" kernelspec in its prefix (and
links to this venv's Jupyter data and configuration: JupyterLab's app, its server
extensions).

Runs only as root (it creates and deletes the users: useradd/userdel -r, always, also on
failure; their leftover processes, started by this test's hub, are killed by pid), and
where chromium, npm (or configurable-http-proxy) and playwright exist."""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from redleaf_lab.grading import course
from redleaf_lab.grading import notebook as nbmod
from redleaf_lab.grading.classroom import Hub, free_port
from tests.jupyter.test_browser import CHROMIUM, CHROMIUM_ARGS

from .test_classroom import EXECUTE_JS

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SYSTEM_PYTHON = Path("/usr/bin/python3")
LOOK = """
import json, os, pwd, stat
import redleaf_lab as rl
_k = rl.boot(heap_bytes=16 << 20)
_k.load("echo", name="course-echo")
_lab = os.path.join(os.getcwd(), "01-domains-and-proxies.ipynb")
print(json.dumps({"user": pwd.getpwuid(os.getuid()).pw_name, "cwd": os.getcwd(),
                  "home": os.path.expanduser("~"), "pid": os.getpid(),
                  "lab_owner": pwd.getpwuid(os.stat(_lab).st_uid).pw_name,
                  "domains": [r.name for r in _k.ps()]}))
_k.shutdown()
"""


@pytest.fixture(autouse=True)
def _skip_unless_possible() -> None:
    """Before any user or venv is made."""
    if os.geteuid() != 0:
        pytest.skip("course mode needs root (the hub spawns servers as other users)")
    for tool in ("useradd", "userdel", "chpasswd"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is missing")
    if not CHROMIUM.exists():
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    if shutil.which("npm") is None and shutil.which("configurable-http-proxy") is None:
        pytest.skip("npm is missing: JupyterHub's proxy cannot be installed")
    pytest.importorskip("playwright.sync_api", reason="the playwright python package is missing")
    if not SYSTEM_PYTHON.exists():
        pytest.skip("no /usr/bin/python3 for the students' interpreter")
    version = subprocess.run([str(SYSTEM_PYTHON), "-c", "import sys; print(sys.version_info[:2])"],
                             capture_output=True, text=True).stdout.strip()
    if version != str(tuple(sys.version_info[:2])):
        pytest.skip(f"/usr/bin/python3 is {version}, this venv {sys.version_info[:2]}: the C "
                    "core would not load")


@pytest.fixture
def students_python() -> Iterator[Path]:
    """A venv every user may execute, importing this checkout (see the module docstring)."""
    folder = Path(tempfile.mkdtemp(prefix="redleaf-course-"))
    try:
        folder.chmod(0o755)
        venv = folder / "venv"
        subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", "--without-pip", str(venv)],
                       check=True)
        python = venv / "bin" / "python"
        site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig."
                               "get_paths()['purelib'])"], check=True, capture_output=True,
                              text=True).stdout.strip()
        ours = next(p for p in sys.path if p.endswith("site-packages"))
        Path(site, "redleaf.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
        # Jupyter's data and config live under sys.prefix: JupyterLab's app and server
        # extensions from this venv; the kernelspec is the new venv's own (installed below)
        (venv / "share" / "jupyter").mkdir(parents=True)
        for entry in (Path(sys.prefix) / "share" / "jupyter").iterdir():
            if entry.name != "kernels":
                (venv / "share" / "jupyter" / entry.name).symlink_to(entry)
        (venv / "etc").mkdir(exist_ok=True)
        (venv / "etc" / "jupyter").symlink_to(Path(sys.prefix) / "etc" / "jupyter")
        subprocess.run([str(python), "-m", "redleaf_lab.jupyter.kernelspec", "--sys-prefix"],
                       check=True, capture_output=True)
        yield python
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _kill_processes_of(user: str) -> None:
    """Servers and kernels the hub started for `user` and left behind: killed by pid."""
    listed = subprocess.run(["ps", "-u", user, "-o", "pid="], capture_output=True, text=True)
    for pid in listed.stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture
def two_students() -> Iterator[dict[str, str]]:
    """Two throwaway Unix users with random passwords, deleted (homes too) afterwards."""
    tag = secrets.token_hex(3)
    users = {f"rlcourse{tag}{i}": "Rl-" + secrets.token_urlsafe(12) for i in (1, 2)}
    made: list[str] = []
    try:
        for user, password in users.items():
            subprocess.run(["useradd", "-m", "-s", "/bin/sh", user], check=True)
            made.append(user)
            subprocess.run(["chpasswd"], input=f"{user}:{password}\n", text=True, check=True)
        yield users
    finally:
        for user in made:
            _kill_processes_of(user)
            subprocess.run(["userdel", "-r", user], capture_output=True)
        for user in made:
            with pytest.raises(KeyError):
                pwd.getpwnam(user)


def test_course_mode_pam_logins_and_servers_as_each_student(
        tmp_path: Path, students_python: Path, two_students: dict[str, str]) -> None:
    from playwright.sync_api import sync_playwright

    state = tmp_path / "class"
    course.student_versions(state / "labs", [nbmod.lab_notebook("01")])
    users = list(two_students)
    with Hub(port=free_port(), state_dir=state, course=True, allowed=users,
             python=str(students_python)) as hub, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        seen = {}
        try:
            page = browser.new_context().new_page()
            page.goto(f"{hub.url}/hub/login")
            page.fill("#username_input", users[0])
            page.fill("#password_input", "not-the-password")
            page.click("#login_submit")
            page.wait_for_selector(".login_error", timeout=20_000)  # refused by PAM
            assert "/hub/login" in page.url
            pages = {}
            for user in users:
                page = browser.new_context(viewport={"width": 1300, "height": 900}).new_page()
                page.goto(f"{hub.url}/hub/login")
                page.wait_for_selector("#username_input", timeout=20_000)
                page.fill("#username_input", user)
                page.fill("#password_input", two_students[user])
                page.click("#login_submit")
                pages[user] = page
            for user, page in pages.items():
                page.wait_for_url(f"**/user/{user}/lab/**", timeout=90_000)
                page.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden) "
                                       ".jp-Notebook-ExecutionIndicator[data-status='idle']",
                                       timeout=90_000)
                page.wait_for_function(
                    "(() => { const p = window.jupyterapp && window.jupyterapp.shell"
                    ".currentWidget; const s = p && p.sessionContext && p.sessionContext"
                    ".session; return s && s.kernel && s.kernel.status === 'idle'; })()",
                    timeout=90_000)  # the RedLeaf Lab kernel, started as this student
                out = page.evaluate(EXECUTE_JS, LOOK)
                assert "ERROR" not in out, out
                seen[user] = json.loads(out.strip().splitlines()[-1])
        except Exception as failure:
            log = hub.log_path.read_text(errors="replace")[-4000:]
            raise AssertionError(f"{failure}\n--- the hub's log:\n{log}") from None
        finally:
            browser.close()
    assert hub.process is None
    assert len({view["pid"] for view in seen.values()}) == 2, seen
    for user, view in seen.items():
        home = pwd.getpwnam(user).pw_dir
        assert view["user"] == user and view["home"] == home, view
        assert view["cwd"] == f"{home}/redleaf-labs", view
        assert view["lab_owner"] == user, view  # the student version is the student's
        assert view["domains"] == ["course-echo"], view
