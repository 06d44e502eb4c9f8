"""`redleaf-lab rv6` driven through a pseudo-terminal: a pipeline, a redirect, a bad
command, Ctrl-C of a running program, Ctrl-D to exit; `redleaf-lab mkfs` and `fsck`."""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

CLI = str(Path(sys.executable).parent / "redleaf-lab")


def expect(fd: int, pattern: str, seen: list[str], timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = "".join(seen)
        m = re.search(pattern, text)
        if m:
            del seen[:]
            seen.append(text[m.end():])
            return text[:m.end()]
        try:
            import select

            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                seen.append(os.read(fd, 4096).decode("utf-8", "replace"))
        except OSError:
            break
    raise AssertionError(f"did not see {pattern!r}; got {''.join(seen)!r}")


def start_front(tmp_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    """`redleaf-lab rv6` on a fresh pseudo-terminal whose ECHO is off: everything read
    back is the front's and the programs' output, never the typed text, so seeing a word
    proves a program wrote it (readline follows the terminal's ECHO setting)."""
    primary, secondary = os.openpty()
    attrs = termios.tcgetattr(secondary)
    attrs[3] &= ~termios.ECHO
    termios.tcsetattr(secondary, termios.TCSANOW, attrs)
    env = dict(os.environ, TERM="dumb", PYTHONUNBUFFERED="1")

    def controlling_terminal() -> None:  # the pty becomes the front's terminal: ^C is SIGINT
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen([CLI, "rv6", "--blocks", "1024"], stdin=secondary,
                            stdout=secondary, stderr=secondary, env=env, close_fds=True,
                            preexec_fn=controlling_terminal, cwd=tmp_path)
    os.close(secondary)
    return proc, primary


@pytest.mark.skipif(not Path(CLI).exists(), reason="the redleaf-lab script is not installed")
def test_the_shell_in_a_terminal(tmp_path):
    proc, primary = start_front(tmp_path)
    seen: list[str] = []
    try:
        expect(primary, r"rv6\$ ", seen)
        os.write(primary, b"echo hello rv6 | wc\n")
        assert "1 2 10" in expect(primary, r"rv6\$ ", seen)
        os.write(primary, b"echo kept > /k; cat < /k\n")
        assert "kept" in expect(primary, r"rv6\$ ", seen)
        os.write(primary, b"frobnicate\n")
        assert "sh: frobnicate: not found" in expect(primary, r"rv6\$ ", seen)
        # Ctrl-C of a running program. The handshake makes it deterministic: cat copies
        # a line back, so once it is seen cat runs, and the one ^C must kill it. Then the
        # shell's next prompt must show (it used to stay held back: the front went into
        # input("") for the dead cat's stale console read, so "rv6$ " never came)
        os.write(primary, b"cat\nthrough-cat\n")
        expect(primary, r"through-cat\r?\n", seen)
        os.write(primary, b"\x03")
        expect(primary, r"cat: killed\r?\n", seen)
        expect(primary, r"rv6\$ ", seen)
        os.write(primary, b"echo after\n")
        assert "after" in expect(primary, r"rv6\$ ", seen)
        # ^C with nothing running: a fresh prompt, the half-typed line is dropped
        os.write(primary, b"echo dropped")
        time.sleep(0.2)
        os.write(primary, b"\x03")
        expect(primary, r"\^C\r?\nrv6\$ ", seen)
        os.write(primary, b"echo fresh\n")
        text = expect(primary, r"rv6\$ ", seen)
        assert "fresh" in text and "dropped" not in text
        os.write(primary, b"\x04")  # Ctrl-D
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(primary)


def test_mkfs_and_fsck_commands(tmp_path):
    image = tmp_path / "rv6.img"
    extra = tmp_path / "notes.txt"
    extra.write_text("hi\n")
    out = subprocess.run([CLI, "mkfs", str(image), str(extra), "--blocks", "512"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert image.stat().st_size == 512 * 4096
    out = subprocess.run([CLI, "fsck", str(image)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "clean" in out.stdout
    raw = bytearray(image.read_bytes())
    raw[4096:4100] = b"\0\0\0\0"  # the magic
    image.write_bytes(bytes(raw))
    out = subprocess.run([CLI, "fsck", str(image)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "bad magic" in out.stdout
