"""``facexplain serve`` as a child process on the loopback address, for tests that need a real
server (concurrency, SIGKILL, the browser)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

FACEXPLAIN = Path(sys.executable).parent / "facexplain"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``facexplain serve`` in a child process; ``start`` waits until it answers."""

    def __init__(self, study: Path | None, work: Path, preload: str = "",
                 extra: tuple[str, ...] = ()) -> None:
        self.study, self.work, self.preload, self.extra = study, work, preload, extra
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        # The server logs every request: to a file, so a full pipe never blocks it.
        self.log = self.work.parent / f"server-{self.port}.log"
        self.work.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [str(FACEXPLAIN), "serve", "--port", str(self.port), "--preload", self.preload,
             "--work-dir", str(self.work),
             *(["--study", str(self.study)] if self.study is not None else []), *self.extra],
            stdout=subprocess.DEVNULL, stderr=self.log.open("ab"))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-2000:]
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise AssertionError("server did not start in 120 s: " + self.log.read_text()[-2000:])

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
