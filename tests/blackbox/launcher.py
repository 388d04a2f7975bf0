"""Start either implementation's account service on a free loopback port, and stop it.

Shared by `tests/blackbox/conftest.py` (which starts `repository_after` when no URL is given) and
by `evaluation.py` (which starts both). Only stdlib and httpx: the suite stays black-box.

- `after`:  `python -m repository_after.entrypoints.cli serve --role accounts` on a fresh SQLite
  file in `workdir`, no admin token;
- `before`: `python -m repository_before.server` (in memory).

Both get the same fault settings (`SAGABANK_CREDIT_FAILURE_RATE/MODE`, `SAGABANK_FAULT_SEED`).
Every other `SAGABANK_*` variable of the calling environment is dropped, so an exported setting
(an admin token, a database URL) cannot leak into the server under test.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

ROOT = Path(__file__).resolve().parents[2]
IMPLEMENTATIONS = ("before", "after")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    def __init__(
        self,
        impl: str,
        workdir: Path,
        *,
        fault_rate: float = 0.0,
        fault_mode: str = "before",
        seed: int = 7,
        name: str = "server",
    ) -> None:
        if impl not in IMPLEMENTATIONS:
            raise ValueError(f"unknown implementation {impl!r}")
        self.impl = impl
        self.workdir = workdir
        self.name = name
        self.log_path = workdir / f"{impl}-{name}.log"
        self.settings = {
            "SAGABANK_CREDIT_FAILURE_RATE": str(fault_rate),
            "SAGABANK_CREDIT_FAILURE_MODE": fault_mode,
            "SAGABANK_FAULT_SEED": str(seed),
        }
        self.url = ""
        self.proc: subprocess.Popen[bytes] | None = None

    def _command(self, port: int) -> list[str]:
        if self.impl == "after":
            return [
                sys.executable,
                "-m",
                "repository_after.entrypoints.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--role",
                "accounts",
            ]
        return [sys.executable, "-m", "repository_before.server", "--port", str(port)]

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SAGABANK_")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        env.update(self.settings)
        if self.impl == "after":
            db = self.workdir / f"{self.name}.db"
            env["SAGABANK_DATABASE_URL"] = f"sqlite:///{db}"
            env["SAGABANK_ADMIN_TOKEN"] = ""
        return env

    def start(self, *, timeout: float = 30.0, attempts: int = 3) -> LiveServer:
        """Start on a free port; retry on a fresh port if the child dies (a port race)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, attempts + 1):
            port = free_port()
            self.url = f"http://127.0.0.1:{port}"
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    self._command(port), env=self._env(), cwd=ROOT, stdout=log, stderr=log
                )
            if self._wait_healthy(timeout):
                return self
            self.stop()
            if attempt == attempts:
                break
        raise RuntimeError(f"{self.impl} {self.name} did not start; {self.log_tail()}")

    def _wait_healthy(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        return False

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path.exists():
            return "no log"
        tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return f"log {self.log_path}:\n" + "\n".join(tail)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
