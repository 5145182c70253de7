"""Where the server listens: the admin endpoint stays on loopback, a taken port is one clear
line and a non-zero exit."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from envtest import ListenError, LocalAPIServer


@pytest.fixture()
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_admin_endpoint_stays_on_loopback_whatever_the_api_host() -> None:
    # 127.0.0.2 is loopback too on Linux: a host other than 127.0.0.1 without leaving the
    # machine (what --host 0.0.0.0 would do for the API, the admin endpoint must not follow).
    with LocalAPIServer(host="127.0.0.2", admin_port=0) as api:
        assert urlsplit(api.url).hostname == "127.0.0.2"
        assert urlsplit(api.admin_url).hostname == "127.0.0.1"


def test_in_process_server_on_a_taken_port_raises_listen_error(taken_port: int) -> None:
    with pytest.raises(ListenError, match=f"cannot listen on 127.0.0.1:{taken_port}: "
                                          "address already in use"):
        LocalAPIServer(port=taken_port).start()


def test_command_on_a_taken_port_prints_one_line_and_exits_non_zero(
        taken_port: int, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ambient_ctrl.cli", "apiserver", "--port", str(taken_port),
         "--kubeconfig", str(tmp_path / "kubeconfig")],
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"ambient-ctrl apiserver: cannot listen on 127.0.0.1:{taken_port}: "
        "address already in use"]
