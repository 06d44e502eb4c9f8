"""The terminal front's pieces, without a terminal: the console's "a reader waits" flag
dies with its reader, a prompt that arrives while `input()` waits is shown at once, and
SIGINT breaks `input()` only, never the front's own bookkeeping."""

from __future__ import annotations

import io
import os
import select
import signal
import threading
import time

import pytest

from redleaf_lab.rv6img.console import Console
from redleaf_lab.rv6img.sigint import Interrupts
from redleaf_lab.rv6img.terminal import _Screen


def test_wants_input_ends_with_the_reader_that_was_killed() -> None:
    console = Console()
    killed = threading.Event()

    def reader() -> None:  # the fs domain's console read loop, until its process is killed
        while not killed.is_set():
            if console.read(100, 0.005):
                return

    thread = threading.Thread(target=reader)
    thread.start()
    assert console.wants_input.wait(5.0)
    killed.set()
    thread.join(5.0)
    # a stale flag here made the front prompt for the dead reader: it went into
    # input("") before the shell wrote "rv6$ ", and that prompt was held back for good
    assert not console.wants_input.is_set()
    console.feed("typed ahead\n")  # the next reader gets it
    assert console.read(100, 0.01) == b"typed ahead\n"


def test_a_reader_that_gets_a_line_clears_the_flag_and_another_keeps_it() -> None:
    console = Console()
    got: list[bytes] = []
    readers = [threading.Thread(target=lambda: got.append(console.read(100, 0.05)))
               for _ in range(2)]
    for t in readers:
        t.start()
    assert console.wants_input.wait(5.0)
    console.feed("one\n")
    for t in readers:
        t.join(5.0)
    assert sorted(got) == [b"", b"one\n"]
    assert not console.wants_input.is_set()


def test_output_while_input_waits_is_printed_at_once() -> None:
    out = io.StringIO()
    screen = _Screen(out)
    screen(b"sh: cat: killed\nrv6$ ")
    assert out.getvalue() == "sh: cat: killed\n"  # the prompt is held for input()
    assert screen.begin_input() == "rv6$ "
    screen(b"late$ ")  # came after input() started: shown now, not held
    assert out.getvalue().endswith("late$ ")
    screen.end_input()
    screen(b"done\nnext$ ")
    assert out.getvalue().endswith("late$ done\n") and screen.take_prompt() == "next$ "
    screen.restore_prompt("rv6$ ")
    assert screen.begin_input() == "rv6$ "


def test_sigint_breaks_input_once_and_only_input() -> None:
    interrupts = Interrupts()
    interrupts.handler(2, None)  # outside input(): counted, nothing raised
    assert interrupts.take() and not interrupts.take()
    interrupts.in_input = True
    with pytest.raises(KeyboardInterrupt):
        interrupts.handler(2, None)
    interrupts.handler(2, None)  # a second ^C before the loop ran: counted only
    assert interrupts.received == 3 and interrupts.take() and not interrupts.take()


def test_a_sigint_delivered_to_another_thread_breaks_a_blocked_input() -> None:
    # The tty's SIGINT may land on any thread; CPython then only trips a flag, and a main
    # thread asleep in readline's select() would not see the ^C until the next key press
    # (the flaky Ctrl-C of the terminal test). The watcher must wake it.
    before = signal.getsignal(signal.SIGINT)
    interrupts = Interrupts()
    interrupts.install()
    read_end, write_end = os.pipe()
    try:
        def other_thread() -> None:
            time.sleep(0.2)
            signal.pthread_kill(threading.get_ident(), signal.SIGINT)

        threading.Thread(target=other_thread).start()
        interrupts.in_input = True
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            select.select([read_end], [], [], 10.0)  # stands for readline's select()
        assert time.monotonic() - started < 3.0
        assert interrupts.take()
    finally:
        interrupts.uninstall()
        os.close(read_end)
        os.close(write_end)
    assert signal.getsignal(signal.SIGINT) is before  # uninstall restored it
