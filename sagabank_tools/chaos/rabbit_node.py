"""A private RabbitMQ node for a chaos run that restarts its broker (never the shared one).

Own node name, AMQP and distribution ports, data directory under a fresh temporary directory;
run as the `rabbitmq` user in a process group of its own, so `restart` SIGKILLs the whole node
(no clean shutdown) and starts it again on the same data. Needs root and Debian's
rabbitmq-server (`make rabbitmq`); the same recipe as `tests/rabbit.py`'s `private_node`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
    except OSError:
        return False
    return True


def unavailable() -> str | None:
    """Why no private node can run here, or None."""
    if os.geteuid() != 0 or not os.access(SERVER, os.X_OK):
        return f"a private RabbitMQ node needs root and {SERVER} (make rabbitmq)"
    import pwd

    try:
        pwd.getpwnam("rabbitmq")
    except KeyError:
        return "no rabbitmq user (make rabbitmq)"
    return None


class PrivateNode:
    def __init__(self) -> None:
        self.base = base = Path(tempfile.mkdtemp(prefix="sagabank-chaos-rabbit-"))
        self.port, self.dist_port = _free_port(), _free_port()
        self.name = f"sagabank_chaos_{uuid.uuid4().hex[:12]}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        (base / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        shutil.chown(base, "rabbitmq")
        shutil.chown(base / "rabbitmq.conf", "rabbitmq")

    def start(self, timeout: float = 60) -> PrivateNode:
        env = {
            "RABBITMQ_CONF_ENV_FILE": "/dev/null",
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(self.base / "pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "HOME": "/var/lib/rabbitmq",
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        }
        with (self.base / "node.log").open("ab") as log:
            self.process = subprocess.Popen(
                [SERVER],
                env=env,
                cwd=self.base,
                user="rabbitmq",
                group="rabbitmq",
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not _listening(self.port):  # polling a child's readiness: no signal to wait on
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"the private RabbitMQ node did not start: {self.base}")
            time.sleep(0.1)
        return self

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """Signal the node's whole process group and wait for it to end (SIGTERM: the node
        shuts down cleanly; one that has not ended within 60 s is SIGKILLed)."""
        if self.process is None:
            return
        group = self.process.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, sig)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
            self.process.wait(timeout=30)
        self.process = None
        deadline = time.monotonic() + 10
        while _listening(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def restart(self) -> None:
        """Stop the node (SIGTERM: a clean shutdown, as an operator's restart or a host's
        reboot) and start it again on its data. (A SIGKILLed node is `tests/e2e/
        test_broker_sigkill.py`'s; here, with seven quorum queues, a SIGKILL sometimes left one
        queue without a leader for minutes: docs/chaos.md.)"""
        self.kill(signal.SIGTERM)
        self.start()
        self.restarts += 1

    def remove(self) -> None:
        self.kill()
        shutil.rmtree(self.base, ignore_errors=True)
