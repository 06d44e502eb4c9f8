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

For a course machine: replace the DummyAuthenticator with PAM (system users) and the
SimpleLocalProcessSpawner with LocalProcessSpawner, so each student's server runs as that
student's Unix user; the rest stays.
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

# try-it mode: students student1..N, one shared password
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = os.environ.get("REDLEAF_CLASS_PASSWORD", "redleaf")
c.Authenticator.allowed_users = {f"student{i}" for i in range(1, users + 1)}

# every student: a JupyterLab of their own, in their own home, the venv's Python
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = str(state / "homes" / "{username}")
c.Spawner.cmd = [sys.executable, "-m", "jupyterhub.singleuser"]
c.Spawner.default_url = "/lab/tree/01-domains-and-proxies.ipynb"
c.Spawner.args = ["--LabApp.expose_app_in_browser=True", "--allow-root"]
c.Spawner.env_keep = ["PATH", "LANG", "LC_ALL", "JUPYTER_PATH", "REDLEAF_LAB_PROXIES"]
c.Spawner.start_timeout = 60
c.Spawner.http_timeout = 60
c.Spawner.mem_limit = "1G"  # advisory for this spawner; enforced by container spawners


def copy_labs(spawner):
    """Give a student the student versions once (their edits are never overwritten)."""
    home = state / "homes" / spawner.user.name
    home.mkdir(parents=True, exist_ok=True)
    for notebook in sorted(labs.glob("*.ipynb")):
        if not (home / notebook.name).exists():
            shutil.copy(notebook, home / notebook.name)
    # each student's Jupyter state stays in their home
    spawner.environment.update({
        "JUPYTER_RUNTIME_DIR": str(home / ".jupyter-runtime"),
        "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),
        "IPYTHONDIR": str(home / ".ipython"),
    })


c.Spawner.pre_spawn_hook = copy_labs
