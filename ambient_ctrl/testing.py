"""Test helpers shipped with the framework, for this project's tests and for operator authors.

Nothing here imports pytest.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(check: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.05,
               message: str = "condition not met",
               ignoring: tuple[type[Exception], ...] = ()) -> T:
    """Call ``check`` until it returns a truthy value without raising AssertionError (or one of
    ``ignoring``, e.g. ``ConnectionError`` while a server starts).

    Bounded: after ``timeout`` seconds the last AssertionError (or a new one) is raised.
    """
    deadline = time.monotonic() + timeout
    last: AssertionError | None = None
    while True:
        try:
            result = check()
            if result:
                return result
        except AssertionError as exc:
            last = exc
        except ignoring as exc:
            last = AssertionError(f"{message}: {exc!r}")
        if time.monotonic() >= deadline:
            if last is not None:
                raise last
            raise AssertionError(f"{message} within {timeout} s")
        time.sleep(interval)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
