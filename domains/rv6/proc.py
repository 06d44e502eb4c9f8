"""The process table of the core domain.

A `Proc` is one spawned program: pid, parent pid, name, state ("running" until its main
returns, then "zombie" until its parent waits for it) and exit status. Pid 0 is Rv6
itself (the front that booted it); pids are never reused.

Exit status: what main returned; CRASHED (-1) if the program domain panicked;
KILLED (-9) if it was killed. An orphan (its parent gone) is reaped when it ends.

Locking: every access holds the table's lock (a kernel lock from ctx.lock()).
"""

RUNNING, ZOMBIE = "running", "zombie"
CRASHED, KILLED = -1, -9


class Proc:
    def __init__(self, pid: int, parent: int, name: str) -> None:
        self.pid = pid
        self.parent = parent
        self.name = name
        self.state = RUNNING
        self.status = 0
        self.killed = False
        self.program = None  # the Program proxy
        self.reason = ""


class ProcTable:
    def __init__(self, ctx) -> None:
        self.lock = ctx.lock()
        self.procs = {}
        self._next = 1

    def new(self, parent: int, name: str) -> Proc:
        with self.lock:
            p = Proc(self._next, parent, name)
            self._next += 1
            self.procs[p.pid] = p
            return p

    def get(self, pid: int):
        with self.lock:
            return self.procs.get(pid)

    def exited(self, p: Proc, status: int) -> None:
        with self.lock:
            p.state = ZOMBIE
            p.status = status
            p.program = None
            for child in self.procs.values():
                if child.parent == p.pid:
                    child.parent = 0 if child.state == RUNNING else -1
            for pid in [c.pid for c in self.procs.values() if c.parent == -1]:
                del self.procs[pid]
            parent = self.procs.get(p.parent)
            if p.parent != 0 and (parent is None or parent.state != RUNNING):
                del self.procs[p.pid]

    def reap(self, parent: int, child: int):
        """(pid, status) of an ended child, (0, 0) if children run, None if none match."""
        with self.lock:
            kids = [c for c in self.procs.values() if c.parent == parent
                    and (child == -1 or c.pid == child)]
            if not kids:
                return None
            for c in kids:
                if c.state == ZOMBIE:
                    del self.procs[c.pid]
                    return (c.pid, c.status)
            return (0, 0)

    def count(self) -> int:
        """Processes in the table: running ones and zombies not yet waited for."""
        with self.lock:
            return len(self.procs)

    def descends(self, pid: int, ancestor: int) -> bool:
        """Is `pid` a child, grandchild... of `ancestor`?"""
        with self.lock:
            p = self.procs.get(pid)
            for _ in range(len(self.procs)):  # (bounded: parents never form a cycle)
                if p is None or p.parent <= 0:
                    return False
                if p.parent == ancestor:
                    return True
                p = self.procs.get(p.parent)
            return False

    def rows(self) -> tuple:
        with self.lock:
            return tuple((p.pid, p.parent, p.name, p.state) for p in self.procs.values())
