"""A shadow's crash-path hook while another thread makes its first call (issue 12, item 1
audit of idl/shadow.py).

The reclaim hook (`ShadowBase._rescue`) drops the in-flight records of threads that
ended, iterating over the per-thread record dict. A thread that makes its first call
meanwhile adds a record: iterating the live dict then raised "dictionary changed size
during iteration" inside the kernel's crash path (reported as `reclaim-hook-failed`).
The thread switch is made deterministic here: the record key of an ended thread adds
a new thread's record when the hook looks it up.
"""

from __future__ import annotations

from redleaf_lab.devices import MemStore
from redleaf_lab.heap import BlkReq, RRef, RRefDeque
from redleaf_lab.idl.shadow import make_shadow


def test_a_new_caller_during_the_rescue_hook_does_not_break_it(kernel) -> None:
    kernel.load("membdev", store=MemStore(8))
    shadow = make_shadow(kernel, "membdev")
    submit = RRefDeque.new(BlkReq, 1)
    submit.push_many([RRef.new(BlkReq)])
    shadow.submit_and_poll(submit, RRefDeque.new(BlkReq, 1), False)  # records this thread
    records = shadow._in_flight
    (record,) = records.values()
    armed = [False]

    class EndedThread(int):
        """The ident of a thread that ended; looking it up lets a new caller in."""

        def __hash__(self) -> int:
            if armed[0]:
                armed[0] = False
                records[-2] = record  # the new caller's first record
            return int.__hash__(self)

    records.clear()
    records[EndedThread(-1)] = record
    armed[0] = True
    kernel.panic("membdev")
    assert kernel.events.history({"reclaim-hook-failed"}) == []
    assert list(records) == [-2]  # the ended thread's record went; the new one stays
    assert not armed[0]
