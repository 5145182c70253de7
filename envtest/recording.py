"""Request recording: what one client sent, request by request, for a benchmark to replay.

Off by default. Armed for one client (the product part of its User-Agent, as the request
counters name it: ``ambient-ctrl``, ``kubectl``...), the recorder keeps every resource request
that client sends, in the order the server received them: the verb and resource (as counted),
the method, the request target (path and query, as sent), the headers that shape the answer
(content type, accept, ...) and the body. Authorization is never kept. Bounded: past ``limit``
requests it keeps counting (``dropped``) but stops keeping.

The admin endpoint (``admin.py``) arms, reads and disarms it; ``bench/wire_floor.py`` uses it to
replay an operator's writes from a bare client.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from envtest.http.protocol import Request

KEPT_HEADERS = ("content-type", "accept", "content-encoding", "user-agent")
"""The headers that change how the server reads a request or writes its answer."""
DEFAULT_LIMIT = 200_000


@dataclass(frozen=True, slots=True)
class Recorded:
    """One request as the server received it."""

    verb: str
    resource: str
    """``plural`` or ``plural/subresource``, as the request counters name it."""
    group: str
    method: str
    target: str
    """The request target: path and query string, as sent."""
    headers: dict[str, str]
    body: bytes
    received: float = 0.0
    """``time.monotonic()`` when the server routed it (Linux's monotonic clock is system-wide:
    a benchmark compares it with its own clock to build a request timeline)."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the body as text (Kubernetes bodies are UTF-8), else ``bodyHex``."""
        out: dict[str, Any] = {"verb": self.verb, "group": self.group,
                               "resource": self.resource, "method": self.method,
                               "target": self.target, "headers": self.headers,
                               "received": self.received}
        try:
            out["body"] = self.body.decode()
        except UnicodeDecodeError:
            out["bodyHex"] = self.body.hex()
        return out


@dataclass
class RequestRecorder:
    """Keeps the requests of one client while armed (server loop thread only)."""

    agent: str = ""
    """The client recorded (User-Agent product); empty: not armed."""
    limit: int = DEFAULT_LIMIT
    requests: list[Recorded] = field(default_factory=list)
    dropped: int = 0

    def arm(self, agent: str, limit: int = DEFAULT_LIMIT) -> None:
        """Start recording ``agent``'s requests afresh."""
        if not agent:
            raise ValueError("name the client to record (its User-Agent product)")
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.agent, self.limit, self.requests, self.dropped = agent, limit, [], 0

    def disarm(self) -> None:
        """Stop recording and forget what was kept."""
        self.agent, self.requests, self.dropped = "", [], 0

    def observe(self, agent: str, request: Request, verb: str, group: str,
                resource: str) -> None:
        """Keep ``request`` if it comes from the recorded client."""
        if agent != self.agent or not agent:
            return
        if len(self.requests) >= self.limit:
            self.dropped += 1
            return
        headers = {name: request.headers[name] for name in KEPT_HEADERS
                   if name in request.headers}
        self.requests.append(Recorded(verb, resource, group, request.method, request.target,
                                      headers, request.body, time.monotonic()))

    def state(self) -> dict[str, Any]:
        return {"agent": self.agent, "limit": self.limit, "kept": len(self.requests),
                "dropped": self.dropped}
