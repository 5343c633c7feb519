"""MiniStack that cannot start is an error that shows what it printed, and leaves nothing."""

import socket
from pathlib import Path

import pytest

from emulator import ministack
from emulator.local import free_port


def test_a_taken_port_fails_with_ministacks_own_words() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = ministack.MiniStack(port)
        with pytest.raises(ministack.MiniStackFailed, match="already in use"):
            server.start()
    assert server.tmpdir is None
    assert list(ministack.scratch_root().glob(ministack.scratch_prefix(port) + "*")) == []


def test_a_missing_virtualenv_says_how_to_make_it(tmp_path: Path) -> None:
    server = ministack.MiniStack(free_port(), executable=tmp_path / "ministack")
    with pytest.raises(ministack.MiniStackFailed, match="is missing: `make deploy-local`"):
        server.start()
