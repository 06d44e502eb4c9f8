"""A mutex for the NVMe driver whose waits are bounded and end when the incarnation dies.

Purpose: the driver's pick lock and each queue pair's lock (see nvme.py, Concurrency).
`acquire()` takes the one token of a list (`list.pop` and `list.append` are atomic
under the GIL), or waits in short sleeps (at most 1 ms) made from Python, so an
unwinding lands in a waiter at once. Unlike a plain blocking lock, a waiter also gives up (NvmeError, which
the proxy reports as the already-crashed domain's RpcError) once its incarnation is no
longer running: a thread unwound while holding the lock never releases it, and a
thread that entered the dead incarnation after the crash's unwinding pass would
otherwise wait on it forever.

Ownership: the lock belongs to one driver incarnation and dies with it. Not reentrant.
"""

import time

from .regs import NvmeError


class DomainLock:
    def __init__(self, dead, name: str) -> None:
        self._dead = dead  # () -> bool: True once the driver incarnation is dead
        self._name = name
        self._free = [True]  # one token while the lock is free

    def acquire(self) -> None:
        free = self._free
        if free:
            try:
                free.pop()
                return
            except IndexError:  # taken by another thread since the check
                pass
        self._wait()

    def try_acquire(self) -> bool:
        """Take the lock if it is free, without waiting."""
        free = self._free
        if free:
            try:
                free.pop()
                return True
            except IndexError:
                return False
        return False

    def _wait(self) -> None:
        """The slow path: poll in sleeps of 20 us, growing to 1 ms."""
        free = self._free
        pause = 0.00002
        while True:
            if self._dead():
                raise NvmeError(f"{self._name}: this driver incarnation stopped while a call "
                                "waited for the lock")
            time.sleep(pause)
            pause = min(pause * 2, 0.001)
            if free:
                try:
                    free.pop()
                    return
                except IndexError:
                    pass

    def release(self) -> None:
        self._free.append(True)

    def __enter__(self) -> "DomainLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._free.append(True)
