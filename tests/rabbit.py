"""RabbitMQ for the tests: a fresh vhost per test, created and deleted by it with rabbitmqctl.

The broker is the one on 127.0.0.1:5672 (user guest), or `SAGABANK_TEST_BROKER_URL` (its vhost
part is replaced); rabbitmqctl (`/usr/sbin/rabbitmqctl`, or `SAGABANK_TEST_RABBITMQCTL`) must
work, as it does for root on the test machine (`make rabbitmq` installs and starts Debian's
rabbitmq-server when none answers). When the broker is unreachable the RabbitMQ tests are
skipped locally but FAIL when the `CI` environment variable is set, as tests/pg.py does.

`private_node()` runs a RabbitMQ node of the test's own (own node name, port and data directory,
as the `rabbitmq` user, in a process group of its own) that a test may SIGKILL and start again on
its data; it needs root and Debian's rabbitmq-server, and never touches the shared broker.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import pytest

BROKER_URL = os.environ.get("SAGABANK_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/")
RABBITMQCTL = os.environ.get("SAGABANK_TEST_RABBITMQCTL", "/usr/sbin/rabbitmqctl")


def ctl(*args: str) -> str:
    done = subprocess.run(
        [RABBITMQCTL, "-q", *args], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


@functools.cache
def _unreachable() -> str | None:
    parts = urlsplit(BROKER_URL)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5672), 3).close()
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    if not os.access(RABBITMQCTL, os.X_OK):
        return f"{RABBITMQCTL} is not executable"
    try:
        import aio_pika  # noqa: F401  (the `broker` extra)
    except ImportError as exc:
        return f"ImportError: {exc}"
    return None


def require_rabbitmq() -> None:
    reason = _unreachable()
    if reason is None:
        return
    message = f"RabbitMQ at {BROKER_URL} is unusable ({reason})"
    if os.environ.get("CI"):
        pytest.fail(message + "; CI is set, so this is a failure, not a skip")
    pytest.skip(message)


@contextmanager
def fresh_vhost() -> Iterator[str]:
    """Yield the URL of a new vhost `sagabank_test_<hex>` (guest may do anything in it); the
    vhost and everything in it are deleted afterwards."""
    require_rabbitmq()
    name = f"sagabank_test_{uuid.uuid4().hex[:16]}"
    user = urlsplit(BROKER_URL).username or "guest"
    ctl("add_vhost", name)
    try:
        ctl("set_permissions", "-p", name, user, ".*", ".*", ".*")
        yield BROKER_URL.rsplit("/", 1)[0] + "/" + quote(name, safe="")
    finally:
        ctl("delete_vhost", name)


def queues(vhost_url: str) -> dict[str, tuple[str, dict[str, object]]]:
    """Each queue's type and arguments, as the broker itself reports them."""
    vhost = unquote(urlsplit(vhost_url).path.lstrip("/"))
    listed = json.loads(
        ctl("list_queues", "-p", vhost, "name", "type", "arguments", "--formatter", "json")
    )
    return {
        q["name"]: (q["type"], {name: value for name, _kind, value in q["arguments"]})
        for q in listed
    }


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


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


class PrivateNode:
    """A RabbitMQ node of this test's own (own name, port and data directory), run as the
    `rabbitmq` user in a process group of its own, so the test may SIGKILL it (the shared broker
    on 5672 is never touched) and start it again on the same data."""

    def __init__(self) -> None:
        # Not under pytest's tmp_path: its parents are private to root, and the node runs as
        # `rabbitmq`. Removed by `private_node`.
        self.base = base = Path(tempfile.mkdtemp(prefix="sagabank-rabbit-"))
        self.port, self.dist_port = _free_port(), _free_port()
        self.name = f"sagabank_test_{uuid.uuid4().hex[:12]}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self.process: subprocess.Popen[bytes] | None = None
        (base / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        shutil.chown(base, "rabbitmq")
        shutil.chown(base / "rabbitmq.conf", "rabbitmq")

    def start(self, timeout: float = 60) -> None:
        env = {
            "RABBITMQ_CONF_ENV_FILE": "/dev/null",  # not the shared node's name and settings
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(self.base / "pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }
        env["HOME"] = "/var/lib/rabbitmq"  # its Erlang cookie
        env["PATH"] = os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        with (self.base / "node.log").open("ab") as log:
            # As the `rabbitmq` user directly (no `su`, which would start a session of its own):
            # the node's processes stay in this new process group, which `kill` ends whole.
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
        while not _listening(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"the private RabbitMQ node did not start: {self.base}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL the node (its whole process group): no clean shutdown, no flush."""
        if self.process is None:
            return
        group = self.process.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None
        deadline = time.monotonic() + 10
        while _group_alive(group) or _listening(self.port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the private RabbitMQ node outlived its SIGKILL: {self.base}")
            time.sleep(0.05)


def require_private_node() -> None:
    """A private node needs root (to run it as `rabbitmq`) and Debian's rabbitmq-server."""
    reason = None
    if os.geteuid() != 0 or not os.access(SERVER, os.X_OK):
        reason = f"a private RabbitMQ node needs root and {SERVER}"
    else:
        try:
            import pwd

            pwd.getpwnam("rabbitmq")
        except KeyError:
            reason = "no rabbitmq user"
    if reason is None:
        require_rabbitmq()
        return
    if os.environ.get("CI"):
        pytest.fail(reason + "; CI is set, so this is a failure, not a skip")
    pytest.skip(reason)


@contextmanager
def private_node() -> Iterator[PrivateNode]:
    require_private_node()
    node = PrivateNode()
    try:
        node.start()
        yield node
    finally:
        node.kill()
        shutil.rmtree(node.base, ignore_errors=True)
