"""A loopback-only network namespace per "cluster", and a way for the test to talk inside it."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

CLONE_NEWNET = 0x40000000


class Netns:
    """A loopback-only network namespace kept alive by a sleeping process."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.path = ""
        self.proc = subprocess.Popen(["unshare", "--net", "--fork", "sh", "-c", "ip link set lo up && exec sleep infinity"],
                                     start_new_session=True)
        deadline = time.time() + 10
        while not self._lo_up():
            if time.time() > deadline:
                raise RuntimeError(f"netns {name}: loopback never came up")
            time.sleep(0.05)

    def _lo_up(self) -> bool:
        # `unshare --fork` leaves its parent in the host namespace: the forked child holds the new one.
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        if not children:
            return False
        self.path = f"/proc/{children[0]}/ns/net"
        out = subprocess.run(["nsenter", f"--net={self.path}", "ip", "-o", "link", "show", "lo"],
                             capture_output=True, text=True).stdout
        return ",UP" in out or "<UP" in out

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run fn in a thread that has joined this namespace: its sockets live there."""
        result: dict[str, Any] = {}
        libc = ctypes.CDLL(None, use_errno=True)
        path = self.path

        def body() -> None:
            fd = os.open(path, os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns failed")
                result["value"] = fn()
            except BaseException as exc:  # re-raised in the caller
                result["error"] = exc
            finally:
                os.close(fd)

        thread = threading.Thread(target=body)
        thread.start()
        thread.join()
        if "error" in result:
            raise result["error"]
        return result.get("value")

    def http(self, url: str, *, method: str = "GET", headers: dict | None = None, data: bytes | None = None,
             timeout: float = 10) -> tuple[int, bytes]:
        def go() -> tuple[int, bytes]:
            request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    return response.status, response.read()
            except urllib.error.HTTPError as err:
                return err.code, err.read()
        return self.call(go)

    def close(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
