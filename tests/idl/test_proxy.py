"""Proxied calls: exchange checks, moves, borrows, panics and nested calls."""

from __future__ import annotations

import pytest

from redleaf_lab import Block, BorrowWriteError, ExchangeError, RpcError, RRef, UseAfterMoveError


@pytest.fixture
def spin(kernel, domains):
    return kernel.load(domains / "spinner")


def test_plain_call_and_scalar_coercion(spin):
    import numpy as np

    assert spin.ping(5) == 5
    assert spin.ping(np.int64(6)) == 6


@pytest.mark.parametrize("bad", [[1, 2], {"a": 1}, bytearray(b"x"), object(), 1.5])
def test_mutable_or_wrong_objects_cannot_cross(spin, bad):
    with pytest.raises(ExchangeError, match=r"Spin.ping\(x\)"):
        spin.ping(bad)


def test_rref_moves_into_callee_and_is_reclaimed_with_it(kernel, spin):
    ref = RRef.new(Block, 3)
    assert spin.hold(ref) == 1
    assert kernel.heap.domain_stats(kernel.domain("spinner").id) == (1, 4096)
    with pytest.raises(UseAfterMoveError):
        ref.readonly()
    kernel.panic("spinner")
    assert kernel.heap.domain_stats(kernel.domain("spinner").id) == (0, 0)


def test_result_moves_back_to_caller(kernel, spin):
    got = spin.give()
    assert got.owner() == 1 and int(got.readonly()[0]) == 9


def test_returning_an_rref_it_does_not_own_is_a_panic(kernel, spin):
    mine = spin.give()
    with pytest.raises(RpcError, match="panicked"):
        spin.give_foreign()
    assert kernel.domain("spinner").state == "crashed"
    assert mine.owner() == 1  # the caller's block is untouched


def test_borrow_is_read_only_and_call_scoped(kernel, spin):
    ref = RRef.new(Block, 4)
    with pytest.raises(RpcError) as info:
        spin.write_borrowed(ref)
    assert isinstance(info.value.original, BorrowWriteError)
    assert ref.owner() == 1 and int(ref.readonly()[0]) == 4  # lender keeps it


def test_borrowed_view_escaping_the_call_is_a_panic(kernel, spin):
    ref = RRef.new(Block, 8)
    with pytest.raises(RpcError, match="outlived the call"):
        spin.peek_and_keep_view(ref)
    assert ref.owner() == 1
    ref._move(1, 1)  # no borrow left behind: the object can move again


def test_calls_after_crash_fail_fast(kernel, spin):
    kernel.panic("spinner")
    with pytest.raises(RpcError, match="crashed"):
        spin.ping(1)


def test_rpc_error_carries_domain_and_traceback(kernel, domains):
    leaf = kernel.load(domains / "leaf")
    with pytest.raises(RpcError) as info:
        leaf.call(True, False)
    err = info.value
    assert err.domain == "leaf" and isinstance(err.original, RuntimeError)
    assert err.original_traceback is not None


def test_nested_chain_b_handles_c_panic(kernel, domains):
    leaf = kernel.load(domains / "leaf")
    link = kernel.load(domains / "link", next=leaf)
    assert link.call(False, True) == 2
    assert link.call(True, True) == -1  # B saw RpcError and handled it
    assert kernel.domain("leaf").state == "crashed"
    assert kernel.domain("link").state == "running"
    assert link.alive() == 1


def test_nested_chain_unhandled_error_panics_b_too(kernel, domains):
    leaf = kernel.load(domains / "leaf")
    link = kernel.load(domains / "link", next=leaf)
    with pytest.raises(RpcError) as info:
        link.call(True, False)
    assert info.value.domain == "link"
    assert isinstance(info.value.original, RpcError) and info.value.original.domain == "leaf"
    assert kernel.domain("link").state == "crashed"


def test_interface_capability_must_be_a_proxy(kernel, domains):
    from redleaf_lab.errors import DomainLoadError

    with pytest.raises(DomainLoadError, match="must be a Chain proxy"):
        kernel.load(domains / "link", next=object())


def test_error_values_cross_without_a_panic(kernel, domains):
    from redleaf_lab import InvalidRequest

    spin = kernel.load(domains / "spinner")
    with pytest.raises(InvalidRequest, match="no such thing") as info:
        spin.refuse("no such thing")
    assert info.value.__traceback__ is not None
    frames = []
    tb = info.value.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame.f_code.co_filename)
        tb = tb.tb_next
    assert not any("spinner" in f for f in frames)  # no traceback into the callee
    assert kernel.domain("spinner").state == "running" and spin.ping(3) == 3


def _deque(n: int):
    from redleaf_lab import BlkReq, RRef, RRefDeque

    dq = RRefDeque.new(BlkReq, 4)
    dq.push_many([RRef.new(BlkReq) for _ in range(n)])
    return dq


def test_two_deques_move_in_and_back_together(kernel, domains):
    pair = kernel.load(domains / "swapper")
    a, b = _deque(3), _deque(1)
    n, first, second = pair.swap(a, b, 0)
    assert (n, first, second) == (3, b, a) and a.owner() == 1 and b.owner() == 1
    assert len(second) == 3 and len(first) == 1
    with pytest.raises(UseAfterMoveError, match="cannot be passed on again"):
        pair.swap(a, a, 0)  # the same deque twice: refused before the call, rolled back
    assert a.owner() == 1 and kernel.domain("swapper").state == "running"


@pytest.mark.parametrize("mode", [1, 2])
def test_a_bad_pair_result_is_a_panic_and_the_caller_keeps_its_own(kernel, domains, mode):
    pair = kernel.load(domains / "swapper")
    kept = _deque(2)
    pair.swap(kept, _deque(0), 0)  # the domain remembers `kept`, which it gave back
    assert kept.owner() == 1
    with pytest.raises(RpcError, match="panicked"):
        pair.swap(_deque(1), _deque(1), mode)
    assert kernel.domain("swapper").state == "crashed"
    assert kept.owner() == 1 and len(kept) == 2  # untouched by the bad result
