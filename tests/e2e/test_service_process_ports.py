"""A child whose picked port was taken in the meantime starts again on a fresh port.

`free_port()` binds port 0 and lets it go; the child binds that number a moment later, and any
other process may have taken it in between. The race is made certain here: `free_port` first
returns a port this test holds open (listening, never answering), then real free ones. The
child must die on that port and `ServiceProcess.start` must start it again on another one. A
port the caller chose is different: it is never swapped (a restart after SIGKILL must come back
on the address the rest of the system calls), so that child's death is the caller's error.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from repository_after.entrypoints import service_process
from repository_after.entrypoints.service_process import ExitedWhileStarting
from tests.e2e.conftest import Launcher

pytestmark = pytest.mark.e2e


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port this test holds, listening: no other process can bind it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield int(held.getsockname()[1])


def test_a_picked_port_taken_before_the_child_binds_it_is_replaced_by_a_fresh_one(
    launch: Launcher, held_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    picks = [held_port]
    real_free_port = service_process.free_port
    monkeypatch.setattr(
        service_process, "free_port", lambda: picks.pop(0) if picks else real_free_port()
    )

    service = launch(demo_accounts=1)

    assert not picks, "the held port was never handed out"
    assert service.port != held_port
    assert service.url == f"http://127.0.0.1:{service.port}"
    assert httpx.get(f"{service.url}/health", timeout=5).status_code == 200
    # The first child really died on the held port (not on some other error).
    assert "address already in use" in (tmp_path / "accounts.log").read_text().lower()


def test_a_port_the_caller_chose_is_never_swapped(launch: Launcher, held_port: int) -> None:
    with pytest.raises(ExitedWhileStarting, match=f"port {held_port}"):
        launch(port=held_port)
