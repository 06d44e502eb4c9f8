"""Rv6 as a live workload (panels, dashboards): a process writes and verifies files while
its block driver panics; nothing acknowledged is lost."""

from __future__ import annotations

import time

from redleaf_lab.live import create_workload
from redleaf_lab.rv6img import workload as _registers  # noqa: F401 - registers "rv6"


def test_rv6_workload_survives_driver_panics(big_kernel):
    wl = create_workload("rv6", big_kernel)
    wl.start()
    try:
        big_kernel.faults.every("rv6disk", 0.1)
        time.sleep(1.0)
        big_kernel.faults.clear("rv6disk")
    finally:
        wl.stop()
    check = wl.check()
    assert check["lost_acknowledged_writes"] == 0 and check["wrong_reads"] == 0
    assert check["files"] > 0 and wl.errors == 0, wl.last_error
    assert big_kernel.crashes("rv6disk") >= 3
    wl.close()


def test_the_shell_panel_runs_commands_and_panics_the_driver(big_kernel):
    from redleaf_lab.rv6img.shell_widget import Rv6Panel

    panel = Rv6Panel(big_kernel)
    assert panel.run("echo panel | wc") == "1 1 6\n"
    assert panel.panic()
    assert panel.run("cat /README | wc").split()[0] == "3"
    assert "1 crashes" in panel.status.value and "rv6$ echo panel | wc" in panel.output.value
