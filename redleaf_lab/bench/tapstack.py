"""TapStack: the lab's network stack and httpd on a TAP wire inside a fresh namespace.

What it builds (and `close()` tears down, in reverse): a network namespace `rl-net-<tag>`;
an 82599 model whose wire is a TAP device moved into that namespace with the peer
address (default 10.78.0.1/24) and brought up; the ixgbe driver domain, behind its
shadow unless `shadow=False`; the netstack domain (default 10.78.0.2) over it; the httpd
domain over the stack (built-in site or `files`, HTTP on port 80, UDP echo on port 7);
and one serving thread that runs `httpd.run` in a loop. Linux in the namespace is the
peer: `run_in_ns("curl", ...)` runs a client there.

With `rv6_workers=N` (N >= 1) the server is the Rv6 httpd program instead of the httpd
domain: Rv6 boots in the same kernel on an image holding the site under /www (mkfs's
files plus the built-in site or `files`), its core reaches the netstack through its
program services (`attach_net`; the core restarts a crashed stack itself), and the
serving thread runs `httpd -w N /www` through Rv6's shell, again whenever it ends (a
crashed program is restarted, as a supervisor would; `rv6_runs` keeps each run's
status and console output). `close()` kills it first (Rv6's interrupt).

Used by `redleaf-lab net up`, `redleaf-lab bench http|udp`, tests/netstack/test_tap.py
and the lab notebook. Needs root, /dev/net/tun and `ip`; `missing_requirements()` says
what is absent. Not thread safe: one owner drives start/close; the serving thread only
calls httpd.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

DEFAULT_ADDRESS = "10.78.0.2"
DEFAULT_PEER = "10.78.0.1"


def missing_requirements(tools: Sequence[str] = ("ip",)) -> str | None:
    """Why a TAP stack cannot run here, or None."""
    if os.geteuid() != 0:
        return "network namespaces and TAP devices need root"
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun is missing"
    for tool in tools:
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed"
    return None


def _sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=20)


class TapStack:
    def __init__(self, kernel: Any = None, address: str = DEFAULT_ADDRESS,
                 peer: str = DEFAULT_PEER, prefix: int = 24, shadow: bool = True,
                 files: tuple[tuple[str, bytes], ...] | None = None,
                 stack_options: tuple[tuple[str, Any], ...] = (),
                 httpd_options: tuple[tuple[str, Any], ...] = (), suffix: str = "",
                 trace: bool = False, rv6_workers: int = 0) -> None:
        import redleaf_lab

        if prefix != 24 and not 8 <= prefix <= 30:
            raise ValueError(f"prefix must be 8..30, got {prefix}")
        self.kernel = kernel if kernel is not None else redleaf_lab.boot(heap_bytes=256 << 20)
        self.own_kernel = kernel is None
        self.address, self.peer, self.prefix = address, peer, prefix
        self.shadow = shadow
        self.files = files
        # domain names: two TapStacks in one kernel need different ones
        self.names = {d: d + suffix for d in ("ixgbe", "netstack", "httpd")}
        self.stack_options = (("prefix", prefix), ("trace", trace), *tuple(stack_options))
        self.httpd_options = tuple(httpd_options)
        tag = uuid.uuid4().hex[:8]
        self.namespace, self.tap = f"rl-net-{tag}", f"rltap{tag}"
        self.device: Any = None
        self.net: Any = None
        self.stack: Any = None
        self.stack_shadow: Any = None
        self.httpd: Any = None
        self.rv6: Any = None
        self.rv6_workers = rv6_workers
        self.rv6_runs: list[tuple[int, str]] = []
        self.errors: list[BaseException] = []
        self.rounds = 0
        self._stop = threading.Event()
        self._pause = threading.Event()
        self._paused = threading.Event()
        self._thread: threading.Thread | None = None
        self._ns_made = False

    # -- life cycle ---------------------------------------------------------------------
    def start(self) -> TapStack:
        from ..devices.sim_ixgbe import SimIxgbe
        from ..idl.shadow import ShadowPolicy, make_shadow

        why = missing_requirements()
        if why:
            raise RuntimeError(why)
        try:
            self.device = SimIxgbe(self.kernel.heap, wire="tap", tap_name=self.tap, threaded=True)
            _sh("ip", "netns", "add", self.namespace)
            self._ns_made = True
            _sh("ip", "link", "set", self.tap, "netns", self.namespace)
            _sh("ip", "-n", self.namespace, "addr", "add", f"{self.peer}/{self.prefix}",
                "dev", self.tap)
            _sh("ip", "-n", self.namespace, "link", "set", self.tap, "up")
            _sh("ip", "-n", self.namespace, "link", "set", "lo", "up")
            names = self.names
            self.net = self.kernel.load("ixgbe", name=names["ixgbe"], device=self.device)
            if self.shadow:
                self.net = make_shadow(self.kernel, names["ixgbe"], ShadowPolicy(backoff_s=0.0))
            octets = tuple(int(x) for x in self.address.split("."))
            self.stack = self.kernel.load("netstack", name=names["netstack"], net=self.net,
                                          address=octets, options=self.stack_options)
            if self.rv6_workers:
                from ..rv6img.system import boot_rv6

                self.rv6 = boot_rv6(self.kernel, rv6_site_image(self.files))
                self.rv6.services.attach_net(names["netstack"])
                serve = self._serve_rv6
            else:
                # httpd reaches the stack through its shadow: a crashed stack restarts
                # with no connections (peers get RST) and httpd listens again
                self.stack_shadow = make_shadow(self.kernel, names["netstack"],
                                                ShadowPolicy(backoff_s=0.0))
                self.httpd = self.kernel.load("httpd", name=names["httpd"],
                                              sockets=self.stack_shadow, files=self.files,
                                              options=self.httpd_options)
                serve = self._serve
            self._thread = threading.Thread(target=serve, name="httpd-loop", daemon=True)
            self._thread.start()
            self.wait_reachable()
        except BaseException:
            self.close()
            raise
        return self

    def _serve(self) -> None:
        try:
            while not self._stop.is_set():
                if self._pause.is_set():
                    self._paused.set()
                    self._stop.wait(0.01)
                    continue
                self._paused.clear()
                self.httpd.run(8, 5)
                self.rounds += 1
        except BaseException as exc:  # reported by whoever checks `errors`
            self.errors.append(exc)

    def _serve_rv6(self) -> None:
        try:
            while not self._stop.is_set():
                if self._pause.is_set():
                    self._paused.set()
                    self._stop.wait(0.01)
                    continue
                self._paused.clear()
                run = self.rv6.run(f"httpd -w {self.rv6_workers} /www")
                if not self._pause.is_set() and not self._stop.is_set():
                    self.rv6_runs.append(run)  # it ended by itself (a crash): restart it
                    self._stop.wait(0.05)
        except BaseException as exc:
            self.errors.append(exc)

    def _interrupt_until(self, done: threading.Event | None) -> None:
        """Kill the Rv6 httpd (Rv6's Ctrl-C) until `done` is set or the thread ended."""
        deadline = time.monotonic() + 10
        while self._thread is not None and self._thread.is_alive() and \
                (done is None or not done.is_set()) and time.monotonic() < deadline:
            try:
                self.rv6.core.interrupt()
            except Exception:
                return
            self._thread.join(0.05)

    def wait_serving(self, timeout: float = 10.0) -> None:
        """Wait until GET / answers 200 (the Rv6 httpd listens again after a resume)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = self.run_in_ns("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                  "--max-time", "2", self.url("/"), check=False, timeout=5)
            if done.stdout == b"200":
                return
            time.sleep(0.05)
        raise RuntimeError(f"httpd at {self.address} did not answer in {timeout} s")

    def pause(self) -> None:
        """Stop serving and stop the model's thread (a benchmark measuring another path
        wants this stack's CPU back; the Rv6 httpd is killed: its idle polls would cost
        an eighth of a core); `resume()` undoes it (and waits until it serves again)."""
        if self._pause.is_set():
            return
        self._pause.set()
        if self.rv6 is not None:
            self._interrupt_until(self._paused)
        if self._thread is not None and not self._paused.wait(10):
            raise RuntimeError("the serving loop did not pause")
        self.device.stop_thread()

    def resume(self) -> None:
        was_paused = self._pause.is_set()
        self.device.start_thread()
        self._paused.clear()
        self._pause.clear()
        if self.rv6 is not None and was_paused:
            self.wait_serving()

    def wait_reachable(self, timeout: float = 10.0) -> None:
        """Wait until the namespace can ping the stack (ARP resolved, loop running)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = self.run_in_ns("ping", "-c", "1", "-W", "1", self.address, check=False,
                                  timeout=5)
            if done.returncode == 0:
                return
        raise RuntimeError(f"the stack at {self.address} did not answer ping in {timeout} s")

    def close(self) -> None:
        self._stop.set()
        if self.rv6 is not None:
            self._interrupt_until(None)  # kill httpd: the serving thread's run ends
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        rv6 = () if self.rv6 is None else ("rv6", "rv6fs", self.rv6.driver)
        for name in (*rv6, *(self.names[d] for d in ("httpd", "netstack", "ixgbe"))):
            if name in self.kernel.domains:
                try:
                    self.kernel.stop(name)
                except Exception:
                    pass
        if self.device is not None:
            self.device.close()  # closing the TAP's descriptor deletes the interface
            self.device = None
        if self._ns_made:
            subprocess.run(["ip", "netns", "del", self.namespace], capture_output=True, timeout=20)
            self._ns_made = False
        subprocess.run(["ip", "link", "del", self.tap], capture_output=True, timeout=20)
        if self.own_kernel and not self.kernel._closed:
            self.kernel.shutdown()

    def __enter__(self) -> TapStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- clients and observation -------------------------------------------------------
    def run_in_ns(self, *cmd: str, check: bool = True, timeout: float = 60,
                  input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        done = subprocess.run(["ip", "netns", "exec", self.namespace, *cmd], capture_output=True,
                              timeout=timeout, input=input)
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): "
                               f"{done.stderr.decode(errors='replace')[-400:]}")
        return done

    def popen_in_ns(self, *cmd: str, quiet: bool = False) -> subprocess.Popen[bytes]:
        """A process in the namespace; `quiet` sends its output to /dev/null (a server
        that logs every request would block once nobody reads a full pipe)."""
        out = subprocess.DEVNULL if quiet else subprocess.PIPE
        return subprocess.Popen(["ip", "netns", "exec", self.namespace, *cmd],
                                stdout=out, stderr=out)

    def popen_in_ns_stdin(self, *cmd: str) -> subprocess.Popen[bytes]:
        """A client in the namespace whose stdin the caller writes (step by step tests)."""
        return subprocess.Popen(["ip", "netns", "exec", self.namespace, *cmd],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)

    def counters(self) -> dict[str, int]:
        # the current incarnation's (Rv6's core restarts a crashed stack without a shadow)
        return dict(self.kernel.proxy(self.names["netstack"]).counters())

    def url(self, path: str = "/") -> str:
        return f"http://{self.address}{path}"


def rv6_site_image(files: tuple[tuple[str, bytes], ...] | None = None) -> Any:
    """An Rv6 image: mkfs's default files (the programs, httpd among them) and the site
    (`files`, or the built-in one) under /www."""
    from ..domains.httpd.site import builtin_files
    from ..rv6img import default_files, mkfs

    contents = default_files()
    for path, body in (files if files is not None else builtin_files()):
        contents["/www" + path] = body
    size = sum(len(body) for body in contents.values())
    return mkfs(max(2048, 2 * (size // 4096) + 1024), contents)
