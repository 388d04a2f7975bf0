"""RabbitMQ for the tests: a fresh vhost per test, created and deleted by it with rabbitmqctl.

The broker is the one on 127.0.0.1:5672 (user guest), or `SAGABANK_TEST_BROKER_URL` (its vhost
part is replaced); rabbitmqctl (`/usr/sbin/rabbitmqctl`, or `SAGABANK_TEST_RABBITMQCTL`) must
work, as it does for root on the test machine (`make rabbitmq` installs and starts Debian's
rabbitmq-server when none answers). When the broker is unreachable the RabbitMQ tests are
skipped locally but FAIL when the `CI` environment variable is set, as tests/pg.py does.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
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
