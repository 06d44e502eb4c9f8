"""`redleaf-lab bench kernel-rss`: the memory of one student's kernel, and how many
students one machine holds.

Method: start the "RedLeaf Lab" kernel (jupyter_client, as JupyterLab does), read its
RSS (/proc/PID/status VmRSS) once it is up (the extension loaded, the microkernel booted
by the kernelspec), run every cell of labs/00-tour.ipynb in it (nbclient; the tour boots
its lab session with a 64 MiB heap, runs the live dashboard and traffic, panics drivers
and closes the session at its end), then read VmRSS again after the tour and VmHWM (the
peak). For comparison the same is read for the plain "python3" kernel (ipykernel, no
RedLeaf) started the same way, in the same run. Students per machine = machine memory /
(kernel RSS after the tour + the JupyterLab server per student, measured here as the
RSS of an idle `jupyter lab` server, what the hub starts per student) - nothing kept
for the OS.
Goal: at most 150 MiB per student kernel (issue 18).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from ..bench.goals import Goal, goal_lines, goals_json, method_lines
from .classroom import free_port
from .notebook import LABS

MIB = 1 << 20
GOAL_MIB = 150.0


def _status(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) * 1024
    return fields


def _kernel_pid(client: Any) -> int:
    return int(client.km.provisioner.process.pid)


def measure_kernel(kernel_name: str, notebook: Path | None) -> dict[str, float]:
    """RSS of a fresh `kernel_name` kernel after start, after `notebook` (if any), peak."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, 4) if notebook else nbformat.v4.new_notebook()
    nb.cells.insert(0, nbformat.v4.new_code_cell("1"))  # the kernel is up
    nb.cells.append(nbformat.v4.new_code_cell("import gc; gc.collect()"))
    client = NotebookClient(nb, kernel_name=kernel_name, timeout=300,
                            resources={"metadata": {"path": str(LABS)}})
    with client.setup_kernel():
        client.execute_cell(nb.cells[0], 0)
        pid = _kernel_pid(client)
        started = _status(pid)["VmRSS"]
        for index, cell in enumerate(nb.cells[1:], start=1):
            if cell.cell_type == "code":
                client.execute_cell(cell, index)
        time.sleep(0.5)
        after = _status(pid)
    return {"started_mib": started / MIB, "after_mib": after["VmRSS"] / MIB,
            "peak_mib": after["VmHWM"] / MIB}


def measure_server() -> float:
    """RSS (MiB) of an idle `jupyter lab` server (the per-student server, no kernel)."""
    port = free_port()
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": f"/tmp/redleaf-rss-{port}"}
    proc = subprocess.Popen([sys.executable, "-m", "jupyter", "lab", "--no-browser",
                             "--allow-root", "--ServerApp.token=", "--port", str(port),
                             "--ip", "127.0.0.1"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/lab", timeout=2).read()
                break
            except OSError:
                time.sleep(0.3)
        return _status(proc.pid)["VmRSS"] / MIB
    finally:
        proc.terminate()
        proc.wait(15)


def run(machine_gib: float = 24.0, as_json: bool = False) -> int:
    tour = LABS / "00-tour.ipynb"
    redleaf = measure_kernel("redleaf-lab", tour)
    plain = measure_kernel("python3", None)
    server = measure_server()
    per_student = redleaf["after_mib"] + server
    students = int(machine_gib * 1024 // per_student)
    kernels_only = int(machine_gib * 1024 // redleaf["after_mib"])
    goals = [Goal("kernel_rss_after_tour<=150MiB", "RedLeaf Lab kernel RSS after the tour "
                  "<= 150 MiB", redleaf["after_mib"], GOAL_MIB, "<=")]
    result = {"redleaf_kernel": redleaf, "python3_kernel": plain, "jupyter_server_mib": server,
              "machine_gib": machine_gib, "students_per_machine": students,
              "kernels_per_machine": kernels_only, "goals": goals_json(goals)}
    if as_json:
        print(json.dumps(result, indent=2))
        return 0
    lines = method_lines(__doc__.split("Method: ", 1)[1].split("Goal:")[0].replace("\n", " "))
    lines += [
        f"RedLeaf Lab kernel: {redleaf['started_mib']:.1f} MiB started, "
        f"{redleaf['after_mib']:.1f} MiB after the tour, peak {redleaf['peak_mib']:.1f} MiB",
        f"python3 kernel (baseline, same run): {plain['started_mib']:.1f} MiB started",
        f"jupyter server per student: {server:.1f} MiB",
        f"{machine_gib:g} GiB machine: {students} students (kernel after the tour + server), "
        f"{kernels_only} RedLeaf kernels alone",
        *goal_lines(goals)]
    print("\n".join(lines))
    return 0
