"""Start `sagabank serve` as a child process on a free loopback port, and stop it.

Used by the demo (the embedded default: its own account service on a fresh SQLite file) and by
the end-to-end tests, which also SIGKILL it to prove durability.

A free port is found by binding port 0 and closing the socket; the child binds it again a moment
later, and in between any other process may take it (a client's ephemeral port, another test's
server). So when the port was picked here and the child dies while starting, `start` tries again
on a fresh port (`attempts`). A port the caller chose (a restart on the same port after SIGKILL,
a URL another process already points at) is never swapped: that failure is the caller's to see.
Not covered: a thief that itself answers `GET /health` with 200 (another sagabank on loopback)
would pass for the child until the child's death is noticed by whoever calls it next.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx


class ExitedWhileStarting(RuntimeError):
    """The child process ended before it answered `/health` (its port taken, a bad setting)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServiceProcess:
    def __init__(
        self,
        *,
        env: dict[str, str],
        role: str = "accounts",
        port: int | None = None,
        log_path: Path | None = None,
        module: str = "repository_after.entrypoints.cli",
    ) -> None:
        """`module` is run with `serve --host --port --role` (sagabank) or, for any other module,
        with `--host --port` only (e.g. the naive `repository_before.server`)."""
        # Only a port picked here may be swapped for another when the child cannot bind it.
        self._port_is_ours = port is None
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._env = {**os.environ, **env}
        self._role = role
        self._module = module
        self._log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    def start(self, *, timeout: float = 30.0, attempts: int = 3) -> ServiceProcess:
        """Spawn the child and wait until it answers `/health` (`timeout` per attempt). If it
        dies while starting on a port picked here, retry on a fresh one, `attempts` in all."""
        for attempt in range(1, attempts + 1):
            self._spawn()
            try:
                self.wait_healthy(timeout)
                return self
            except ExitedWhileStarting:
                self._close_log()
                if not self._port_is_ours or attempt == attempts:
                    raise
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _spawn(self) -> None:
        args = [sys.executable, "-m", self._module, "--host", "127.0.0.1", "--port", str(self.port)]
        if self._module == "repository_after.entrypoints.cli":
            args[3:3] = ["serve"]
            args += ["--role", self._role]
        if self._log_path is not None:
            self._log_file = open(self._log_path, "ab")  # noqa: SIM115 - closed in _close_log
            out: int | IO[bytes] = self._log_file
        else:
            out = subprocess.DEVNULL
        self.proc = subprocess.Popen(args, env=self._env, stdout=out, stderr=out)

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise ExitedWhileStarting(
                    f"service exited with {self.proc.returncode} while starting on port "
                    f"{self.port}; {self._log_tail()}"
                )
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"service at {self.url} not healthy after {timeout}s")
            time.sleep(0.05)

    def _log_tail(self) -> str:
        if self._log_path is None or not self._log_path.exists():
            return "no log"
        return "log tail:\n" + "\n".join(self._log_path.read_text().splitlines()[-15:])

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flush; what was acknowledged must already be on disk."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._close_log()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close_log()

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
