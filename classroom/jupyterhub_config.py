"""JupyterHub for a RedLeaf Lab class: each student gets a JupyterLab server of their own
(its own process, so its own RedLeaf kernels, heaps and device models) with the
"RedLeaf Lab" kernel and the student versions of the graded labs in their home folder.

Try it on loopback: `redleaf-lab classroom up --users 3` (users student1..3, the password
below). Settings come from the environment, set by that command (or by hand):

  REDLEAF_CLASS_DIR       state folder: hub database, cookie secret, homes/<user>/
  REDLEAF_CLASS_USERS     how many dummy users (student1..N)
  REDLEAF_CLASS_PORT      the hub's port on 127.0.0.1
  REDLEAF_CLASS_PASSWORD  the DummyAuthenticator's shared password (try-it mode only)
  REDLEAF_CLASS_LABS      folder with the student notebooks (make labs-student: build/student)
  REDLEAF_CLASS_PROXY     path of configurable-http-proxy (npm; the command installs it
                          into build/classroom/ when it is not on PATH)
  REDLEAF_CLASS_HUB_PORT, REDLEAF_CLASS_PROXY_API_PORT  the internal ports (8081, 8001)

For a course machine: REDLEAF_CLASS_MODE=course (`redleaf-lab classroom up --course`) logs
students in with their Unix account and password (PAM) and runs each student's server as
that user (LocalProcessSpawner: the hub runs as root), in ~/redleaf-labs/ of their own home,
where the student versions are copied (owned by the student) at their first login:

  REDLEAF_CLASS_ALLOWED_USERS  comma-separated logins allowed in (and/or:)
  REDLEAF_CLASS_GROUP          a Unix group whose members are allowed in
  REDLEAF_CLASS_PYTHON         the interpreter the students' servers and kernels run: it (and
                               the RedLeaf Lab install it imports) must be readable and
                               executable by the students, e.g. a venv under /opt, not under
                               /root; its sys.prefix holds the "RedLeaf Lab" kernelspec
                               (`python -m redleaf_lab.jupyter.kernelspec --sys-prefix`)
"""

import os
import shutil
import sys
from pathlib import Path

c = get_config()  # noqa: F821 (JupyterHub's config loader defines it)

state = Path(os.environ.get("REDLEAF_CLASS_DIR", "classroom-state")).resolve()
users = int(os.environ.get("REDLEAF_CLASS_USERS", "3"))
labs = Path(os.environ.get("REDLEAF_CLASS_LABS", "build/student")).resolve()
state.mkdir(parents=True, exist_ok=True)

c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = int(os.environ.get("REDLEAF_CLASS_PORT", "8000"))
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(os.environ.get("REDLEAF_CLASS_HUB_PORT", "8081"))
c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(state / "jupyterhub.pid")
c.ConfigurableHTTPProxy.pid_file = str(state / "proxy.pid")
c.ConfigurableHTTPProxy.api_url = (
    f"http://127.0.0.1:{int(os.environ.get('REDLEAF_CLASS_PROXY_API_PORT', '8001'))}")
if os.environ.get("REDLEAF_CLASS_PROXY"):
    c.ConfigurableHTTPProxy.command = [os.environ["REDLEAF_CLASS_PROXY"]]

mode = os.environ.get("REDLEAF_CLASS_MODE", "try")
if mode not in ("try", "course"):
    raise ValueError(f"REDLEAF_CLASS_MODE must be 'try' or 'course', got {mode!r}")
c.Spawner.default_url = "/lab/tree/01-domains-and-proxies.ipynb"
c.Spawner.env_keep = ["PATH", "LANG", "LC_ALL", "JUPYTER_PATH", "REDLEAF_LAB_PROXIES"]
c.Spawner.start_timeout = 60
c.Spawner.http_timeout = 60
c.Spawner.mem_limit = "1G"  # advisory for these spawners; enforced by container spawners


def copy_labs_to(folder, owner=None):
    """The student versions, once (a student's edits are never overwritten)."""
    folder.mkdir(parents=True, exist_ok=True)
    made = [folder]
    for notebook in sorted(labs.glob("*.ipynb")):
        if not (folder / notebook.name).exists():
            shutil.copy(notebook, folder / notebook.name)
            made.append(folder / notebook.name)
    if owner is not None:
        for path in made:
            os.chown(path, owner.pw_uid, owner.pw_gid)


if mode == "try":
    # try-it mode: students student1..N, one shared password, servers as the hub's user
    c.JupyterHub.authenticator_class = "dummy"
    c.DummyAuthenticator.password = os.environ.get("REDLEAF_CLASS_PASSWORD", "redleaf")
    c.Authenticator.allowed_users = {f"student{i}" for i in range(1, users + 1)}
    c.JupyterHub.spawner_class = "simple"
    c.SimpleLocalProcessSpawner.home_dir_template = str(state / "homes" / "{username}")
    c.Spawner.cmd = [sys.executable, "-m", "jupyterhub.singleuser"]
    c.Spawner.args = ["--LabApp.expose_app_in_browser=True", "--allow-root"]

    def copy_labs(spawner):
        home = state / "homes" / spawner.user.name
        copy_labs_to(home)
        # each student's Jupyter state stays in their home
        spawner.environment.update({
            "JUPYTER_RUNTIME_DIR": str(home / ".jupyter-runtime"),
            "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),
            "IPYTHONDIR": str(home / ".ipython"),
        })
else:
    import pwd

    # a course: Unix accounts (PAM), each server runs as its student, in their home
    c.JupyterHub.authenticator_class = "pam"
    c.PAMAuthenticator.open_sessions = False  # no login session (utmp, limits) per server
    allowed = {u for u in os.environ.get("REDLEAF_CLASS_ALLOWED_USERS", "").split(",") if u}
    group = os.environ.get("REDLEAF_CLASS_GROUP", "")
    if not allowed and not group:
        raise ValueError("course mode: set REDLEAF_CLASS_ALLOWED_USERS or REDLEAF_CLASS_GROUP")
    if allowed:
        c.Authenticator.allowed_users = allowed
    if group:
        c.PAMAuthenticator.allowed_groups = {group}
    c.JupyterHub.spawner_class = "localprocess"
    python = os.environ.get("REDLEAF_CLASS_PYTHON", sys.executable)
    c.Spawner.cmd = [python, "-m", "jupyterhub.singleuser"]
    c.Spawner.args = ["--LabApp.expose_app_in_browser=True"]
    c.Spawner.notebook_dir = "~/redleaf-labs"

    def copy_labs(spawner):
        owner = pwd.getpwnam(spawner.user.name)
        copy_labs_to(Path(owner.pw_dir) / "redleaf-labs", owner)


c.Spawner.pre_spawn_hook = copy_labs
