"""The terminal front of Rv6: `redleaf-lab rv6` boots it and wires this terminal to /console.

Output the programs write to the console is printed at once, except the text after the
last newline (a prompt such as "rv6$ "), which is held back and given to `input()` as
its prompt, so readline's line editing and history redraw it properly. Whenever a
program waits for console input, the front reads one line (readline) and feeds it.

Keys: Ctrl-C kills the running program(s) (`Rv6.interrupt`: every process but init and
the shells; if none was running, a fresh prompt and the typed line is dropped); Ctrl-D
ends the console's input: the shell exits, init exits, and so does the front. SIGINT
only counts (sigint.py): the loop handles each ^C between two steps, and a ^C breaks
`input()` at most once, so a ^C can never interrupt the front's own bookkeeping. With `--image FILE` the device is
written back to FILE on exit if fsck finds it clean.
"""

from __future__ import annotations

import threading
import time
from typing import Any, TextIO

from .sigint import Interrupts


class _Screen:
    """The console's sink: prints complete lines, keeps the unfinished one as a prompt.

    While the front sits in `input()` (between `begin_input` and `end_input`), output is
    printed at once, whole: a prompt that arrives after `input()` started (the shell's
    next "rv6$ " after a killed program) must not wait for a prompt call that never comes.
    """

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._lock = threading.Lock()
        self._reading = False
        self.pending = ""

    def __call__(self, data: bytes) -> None:
        text = data.decode("utf-8", "replace")
        with self._lock:
            if self._reading:
                self._out.write(text)
                self._out.flush()
                return
            text = self.pending + text
            head, sep, tail = text.rpartition("\n")
            if sep:
                self._out.write(head + "\n")
                self._out.flush()
            self.pending = tail

    def take_prompt(self) -> str:
        with self._lock:
            prompt, self.pending = self.pending, ""
            return prompt

    def begin_input(self) -> str:
        """The prompt for `input()`; output from now on is printed at once."""
        with self._lock:
            self._reading = True
            prompt, self.pending = self.pending, ""
            return prompt

    def end_input(self) -> None:
        with self._lock:
            self._reading = False

    def restore_prompt(self, prompt: str) -> None:
        """Show `prompt` again at the next `input()` (a ^C that killed nothing)."""
        with self._lock:
            self.pending = prompt + self.pending


def run_shell(device: str, image_path: str | None, blocks: int, stdin: TextIO,
              stdout: TextIO) -> int:
    from ..kernel.kernel import boot
    from . import default_files, fsck, mkfs, read_image, write_image
    from .console import Console
    from .system import boot_rv6

    try:
        import readline  # noqa: F401  (line editing and history for input())
    except ImportError:  # pragma: no cover - not on every platform
        pass
    image = read_image(image_path) if image_path else mkfs(blocks, default_files())
    kernel = boot(heap_bytes=256 << 20)
    screen = _Screen(stdout)
    console = Console(sink=screen)
    rv6 = boot_rv6(kernel, image, device=device, console=console)
    stdout.write(f"Rv6 on {device} ({len(image)} blocks); Ctrl-C interrupts, Ctrl-D exits\n")
    stdout.flush()
    done = threading.Event()
    init_pid = rv6.core.boot()
    if init_pid < 0:
        stdout.write(f"rv6: cannot start /init ({init_pid})\n")
        kernel.shutdown()
        return 1

    def watch() -> None:
        rv6.core.wait(0, init_pid)
        done.set()

    threading.Thread(target=watch, daemon=True, name="rv6-init-watch").start()
    try:
        _loop(rv6, console, screen, done)
    finally:
        console.close()
        done.wait(3.0)
        tail = screen.take_prompt()
        if tail:
            stdout.write(tail + "\n")
        if image_path:
            final = rv6.image()
            problems = fsck(final)
            if problems:
                stdout.write(f"rv6: {image_path} not written back: fsck found "
                             f"{len(problems)} problem(s)\n")
            else:
                write_image(final, image_path)
        kernel.shutdown()
    return 0


def _loop(rv6: Any, console: Any, screen: _Screen, done: threading.Event) -> None:
    interrupts = Interrupts()
    on_main = threading.current_thread() is threading.main_thread()
    if on_main:
        interrupts.install()
    try:
        _read_lines(rv6, console, screen, done, interrupts)
    finally:
        interrupts.uninstall()


def _read_lines(rv6: Any, console: Any, screen: _Screen, done: threading.Event,
                interrupts: Interrupts) -> None:
    prompt = ""  # what the last input() showed
    while not done.is_set():
        try:
            if interrupts.take():
                _interrupt(rv6, console, screen, prompt)
                prompt = ""
                continue
            if not console.wants_input.wait(0.05):
                continue
            prompt = screen.begin_input()
            try:
                interrupts.in_input = True
                if interrupts.received != interrupts.handled:  # a ^C just before
                    raise KeyboardInterrupt
                line = input(prompt)
                interrupts.in_input = False
            except EOFError:
                return
            finally:
                interrupts.in_input = False
                screen.end_input()
            prompt = ""
            console.feed(line + "\n")
        except KeyboardInterrupt:  # broke input(); `interrupts` counted it
            continue


def _interrupt(rv6: Any, console: Any, screen: _Screen, prompt: str) -> None:
    """Ctrl-C: kill the running program(s); with none, a fresh prompt (the typed line
    is dropped). After a kill, wait until the killed program's console read has ended,
    so the next `input()` is for the shell's prompt, not for the dead reader."""
    print("^C", flush=True)
    killed = rv6.core.interrupt()
    if not killed:
        screen.restore_prompt(prompt)
        return
    deadline = time.monotonic() + 1.0
    while console.wants_input.is_set() and time.monotonic() < deadline:
        time.sleep(0.002)
