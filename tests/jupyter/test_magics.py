"""The IPython extension and `%redleaf` under a real InteractiveShell."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell

from redleaf_lab.jupyter import state
from redleaf_lab.jupyter.magics import Record, Rows


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "redleaf_lab")
    try:
        yield ip
    finally:
        ip.run_line_magic("unload_ext", "redleaf_lab")
        assert state._session is None


def test_load_ext_boots_a_kernel_with_the_lab_domains(shell: InteractiveShell) -> None:
    kernel = shell.user_ns["kernel"]
    assert {"checksum", "kvstore", "membdev", "nvme"} <= set(kernel.domains)
    assert shell.user_ns["lab"].kernel is kernel
    assert all(d.state == "running" for d in kernel.domains.values())


def test_ps_prints_a_table_and_returns_rows(shell: InteractiveShell,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    rows = shell.run_line_magic("redleaf", "ps")
    out = capsys.readouterr().out
    assert isinstance(rows, Rows) and {r.name for r in rows} == {"checksum", "kvstore",
                                                                  "membdev", "nvme", "ixgbe"}
    assert out.splitlines()[0].split()[:3] == ["domain", "id", "state"]
    assert "membdev" in out and "BDev" in out


def test_a_bare_magic_cell_shows_its_table_once(shell: InteractiveShell,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    shell.run_cell("%redleaf ps", store_history=True)
    assert capsys.readouterr().out.count("interface") == 1
    shell.run_cell("rows = %redleaf ps", store_history=True)
    assert capsys.readouterr().out.count("interface") == 1
    shell.run_cell("rows", store_history=True)  # a later cell displays the saved table
    assert capsys.readouterr().out.count("interface") == 1


def test_panic_restart_stop_act_on_the_kernel(shell: InteractiveShell,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    kernel = shell.user_ns["kernel"]
    result = shell.run_line_magic("redleaf", "panic kvstore async")
    assert isinstance(result, Record) and result["armed"] == "panicked now"
    assert kernel.domain("kvstore").state == "crashed" and kernel.crashes("kvstore") == 1
    again = shell.run_line_magic("redleaf", "restart kvstore")
    assert again["incarnation"] == 2 and kernel.domain("kvstore").state == "running"
    armed = shell.run_line_magic("redleaf", "panic membdev every --period 0.5")
    assert "every 0.5 s" in armed["armed"] and kernel.faults.plan("membdev") is not None
    shell.run_line_magic("redleaf", "stop checksum")
    assert kernel.domain("checksum").state == "stopped"
    assert "restarted kvstore: incarnation 2" in capsys.readouterr().out


def test_heap_groups_objects_by_owner_and_type(shell: InteractiveShell,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    kv = shell.user_ns["kernel"].proxy("kvstore")
    shell.run_cell("import redleaf_lab as rl")
    kv.put(1, shell.ev("rl.RRef.new(rl.Block, 1)"))
    kv.put(2, shell.ev("rl.RRef.new(rl.Block, 2)"))
    heap = shell.run_line_magic("redleaf", "heap")
    assert heap["per_domain"]["kvstore"] == (2, 2 * 4096)
    assert ("Block", 2, 8192) in heap["top_types"]
    assert "kvstore" in capsys.readouterr().out


def test_boot_replaces_the_session(shell: InteractiveShell) -> None:
    old = shell.user_ns["kernel"]
    shell.run_line_magic("redleaf", "boot --bare --heap-mb 32")
    assert old._closed and shell.user_ns["kernel"] is not old
    assert shell.user_ns["kernel"].domains == {}


def test_bad_arguments_say_what_is_wrong(shell: InteractiveShell) -> None:
    with pytest.raises(ValueError, match="invalid choice"):
        shell.run_line_magic("redleaf", "panic membdev sometimes")
    with pytest.raises(KeyError, match="nope"):
        shell.run_line_magic("redleaf", "panic nope")


def test_bench_calls_returns_the_rows(shell: InteractiveShell,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    rows = shell.run_line_magic("redleaf", "bench calls --iterations 2000")
    assert rows["proxy_ns"] > 0 and rows["paper_cycles"]["RedLeaf"] == 124
    assert "proxy" in capsys.readouterr().out


def test_dashboard_returns_a_live_view(shell: InteractiveShell) -> None:
    view = shell.run_line_magic("redleaf", "dashboard --no-traffic")
    assert view.sampler.running and "membdev" in view.panels
    assert view.rv6_panel is not None  # Rv6's shell beside the driver panels
    assert view.rv6_panel.run("echo in the dashboard | wc") == "1 3 17\n"
    bare = shell.run_line_magic("redleaf", "dashboard --no-traffic --no-rv6")
    assert bare.rv6_panel is None
    shell.run_line_magic("redleaf", "boot --bare")  # a reboot stops the old view's sampler
    assert not view.sampler.running
