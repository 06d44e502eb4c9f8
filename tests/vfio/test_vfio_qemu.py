"""The unchanged NVMe driver on QEMU's NVMe controller through VFIO, behind an emulated
Intel IOMMU: ONE guest boot (images/guest.py) runs tests/vfio/guest_checks.py, which
reports each check as JSON through the writable share; each test here asserts one check.

Marker `qemu`. Skips (with the reason) only when qemu-system-x86_64 is absent; CI
installs it (.ci/run), so in CI these run. The same boot also checks the runner itself:
the guest command ends with a known exit status and marker line.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from images import guest

pytestmark = pytest.mark.qemu
REPO = Path(__file__).resolve().parents[2]
EXIT = 7  # the command's own exit status, to check the runner reports it


@pytest.fixture(scope="module")
def booted(tmp_path_factory: pytest.TempPathFactory) -> tuple[guest.GuestRun, dict[str, Any]]:
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 is not installed: " + guest.APT_HINT)
    share = tmp_path_factory.mktemp("guest-share")
    cmd = (f"cd {REPO} && {sys.executable} tests/vfio/guest_checks.py /run/share/results.json;"
           f" echo checks-exit=$?; exit {EXIT}")
    run = guest.run(cmd, timeout=900, share=share)
    results_file = share / "results.json"
    assert results_file.exists(), f"the guest wrote no results; output:\n{run.output[-3000:]}"
    return run, json.loads(results_file.read_text())


def figures(booted: tuple[guest.GuestRun, dict[str, Any]], name: str) -> dict[str, Any]:
    run, results = booted
    assert name in results, f"check {name} did not run; output:\n{run.output[-3000:]}"
    result = results[name]
    assert result["ok"], f"{name}: {result.get('error')}\n{result.get('traceback', '')}"
    print(f"{name} ({result['seconds']} s): {json.dumps(result['figures'])}")
    return dict(result["figures"])


def test_runner_reports_status_and_output(booted: tuple[guest.GuestRun, dict[str, Any]]) -> None:
    run, _results = booted
    assert run.status == EXIT and "checks-exit=0" in run.output, run.output[-2000:]
    assert "guest-check identify: ok" in run.output and run.accel in ("tcg", "kvm")
    print(f"boot + checks + power-off: {run.seconds:.1f} s ({run.accel})")


def test_clear_errors_in_the_guest(booted: tuple[guest.GuestRun, dict[str, Any]]) -> None:
    got = figures(booted, "errors")
    assert "busy" in got["messages"]["second open"]
    assert any("not vfio-pci" in m for m in got["messages"].values())


def test_driver_identifies_qemu_nvme(booted: tuple[guest.GuestRun, dict[str, Any]]) -> None:
    got = figures(booted, "identify")
    assert got["vid"] == 0x1B36 and got["model"] == "QEMU NVMe Ctrl"
    assert got["nsid"] == 1 and got["blocks"] == (64 << 20) // 4096
    assert got["lba_size"] == 512  # QEMU's default format: a 4 KiB block is 8 LBAs
    assert got["io_queue_pairs"] == 2 and got["vs"] == "0x10400"
    assert int(got["heap_iova"], 16) < 1 << 39


def test_io_with_checksums_across_queue_wrap(booted: tuple[guest.GuestRun, dict[str, Any]]) -> None:
    got = figures(booted, "io")
    assert got["blocks_verified"] >= 1000
    assert all(c > 256 for c in got["completions_per_pair"])


def test_prp_lists(booted: tuple[guest.GuestRun, dict[str, Any]]) -> None:
    got = figures(booted, "prp")
    assert max(got["transfer_pages"]) >= 64 and got["blocks_verified"] == sum(got["transfer_pages"])


def test_iommu_blocks_dma_to_unmapped_iovas(booted: tuple[guest.GuestRun, dict[str, Any]]) -> None:
    got = figures(booted, "iommu")
    for case in ("unmapped", "never-mapped"):
        assert "DMAR" in got[case]["dmesg"] and got[case]["iova"] in got[case]["dmesg"]


def test_shadow_survives_panics_without_losing_writes(
        booted: tuple[guest.GuestRun, dict[str, Any]]) -> None:
    got = figures(booted, "shadow")
    assert got["panics"] >= 20 and got["function_resets"] == got["panics"]
    assert got["writes_acked"] > 0 and got["blocks_verified"] > 0


def test_functional_iops(booted: tuple[guest.GuestRun, dict[str, Any]]) -> None:
    assert figures(booted, "iops")["iops"] > 0


def test_everything_is_cleaned_up(booted: tuple[guest.GuestRun, dict[str, Any]]) -> None:
    got = figures(booted, "cleanup")
    assert got["vfio_fds_after"] == [] and got["vfio_maps_after"] == 0


def test_bench_nvme_runs_on_vfio(booted: tuple[guest.GuestRun, dict[str, Any]]) -> None:
    got = figures(booted, "bench")
    assert got["rows"] >= 30 and min(got["randread_b32_iops"].values()) > 0


def test_a_4096_byte_lba_namespace_works_too(
        booted: tuple[guest.GuestRun, dict[str, Any]]) -> None:
    got = figures(booted, "lba4096")
    assert got["lba_size"] == 4096 and got["blocks"] == (64 << 20) // 4096
    assert got["blocks_verified"] >= got["blocks_written"] >= 500  # every acked block read back


def test_e1000e_registers_through_the_same_layer(
        booted: tuple[guest.GuestRun, dict[str, Any]]) -> None:
    got = figures(booted, "e1000e")
    assert got["vendor_device"] == "8086:10d3" and got["mac"] == "52:54:00:12:34:56"
