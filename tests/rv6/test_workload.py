"""Rv6 as a live workload (panels, dashboards, the demo): a process writes and verifies
files while its block driver panics; nothing acknowledged is lost, through Rv6 or on the
media. Broken block drivers under Rv6 prove the checks see what they claim to."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from redleaf_lab.errors import DomainLoadError
from redleaf_lab.live import create_workload
from redleaf_lab.rv6img import workload as _registers  # noqa: F401 - registers "rv6"

BROKEN_DRIVERS = Path(__file__).parents[1] / "support" / "domains"


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
    assert check["lost_writes"] == 0 and check["wrong_reads"] == 0
    assert check["media"] == "mounted" and check["lost_on_media"] == 0
    assert check["files"] > 0 and wl.errors == 0, wl.last_error
    assert "rv6disk-media" not in [row.name for row in big_kernel.ps()]  # gone again
    assert big_kernel.crashes("rv6disk") >= 3
    wl.close()


def test_a_driver_that_drops_writes_under_rv6_is_caught_on_the_media(big_kernel):
    wl = create_workload("rv6", big_kernel,
                         membdev_code=BROKEN_DRIVERS / "membdev_dropwrites")
    wl.start()
    time.sleep(0.6)
    wl.stop()
    check = wl.check()
    print(check, wl.errors, wl.last_error)
    assert check["files"] > 0
    # the buffer cache can hide the loss from the program; the media check cannot be
    assert check["lost_on_media"] > 0 and check["lost_writes"] >= check["lost_on_media"]
    wl.close()


@pytest.mark.parametrize("driver", ["membdev_noread", "membdev_otherblock"])
def test_a_driver_that_reads_wrong_blocks_stops_rv6_at_mount(big_kernel, driver):
    with pytest.raises(DomainLoadError, match="rv6fs: init failed: MountError"):
        create_workload("rv6", big_kernel, membdev_code=BROKEN_DRIVERS / driver)


def test_the_shell_panel_runs_commands_and_panics_the_driver(big_kernel):
    from redleaf_lab.rv6img.shell_widget import Rv6Panel

    panel = Rv6Panel(big_kernel)
    assert panel.run("echo panel | wc") == "1 1 6\n"
    assert panel.panic()
    assert panel.run("cat /README | wc").split()[0] == "3"
    assert "1 crashes" in panel.status.value and "rv6$ echo panel | wc" in panel.output.value
