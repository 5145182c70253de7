"""A small HTTPS webhook server of the tests' own: a CA, a certificate for 127.0.0.1 and
localhost, and a handler per path that turns a review into an answer.

The ambient_ctrl manager's webhook server is the real peer (tests use it where its behaviour
is the point); this one lets a test answer what no well-behaved webhook answers — slowly, with
a status other than 200, with a body that is not JSON — and record every review it received.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from foundation.certs import certificate_authority, issue, server_context

Reply = Callable[[dict[str, Any]], "dict[str, Any] | tuple[int, bytes]"]
"""A review's answer: its ``response`` (the envelope is added), or (status, raw body)."""


def allow(**extra: Any) -> Reply:
    """A handler allowing every review, with ``extra`` fields in the response."""
    return lambda review: {"allowed": True, **extra}


def deny(message: str, code: int | None = None) -> Reply:
    status: dict[str, Any] = {"message": message}
    if code is not None:
        status["code"] = code
    return lambda review: {"allowed": False, "status": status}


def json_patch(*operations: dict[str, Any]) -> Reply:
    patch = base64.b64encode(orjson.dumps(list(operations))).decode()
    return lambda review: {"allowed": True, "patchType": "JSONPatch", "patch": patch}


class WebhookBackend:
    """Serves ``routes`` (path -> :data:`Reply`) over HTTPS on 127.0.0.1; records reviews."""

    def __init__(self, routes: dict[str, Reply] | None = None, *, delay: float = 0.0) -> None:
        self.routes: dict[str, Reply] = dict(routes or {})
        self.delay = delay
        """Seconds each answer waits (cut short when the server stops)."""
        self.reviews: list[tuple[str, dict[str, Any]]] = []
        self.ca = certificate_authority("test-webhook-ca")
        pair = issue(self.ca, "test-webhook", ("localhost", "hook.webhooks.svc"), ("127.0.0.1",))
        self._context = server_context(pair.cert_pem, pair.key_pem)
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = False
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="test-webhook-backend")

    @property
    def ca_bundle(self) -> str:
        return base64.b64encode(self.ca.cert_pem).decode()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def config(self, path: str) -> dict[str, Any]:
        """A ``clientConfig`` calling ``path`` by URL, trusting this server's CA."""
        return {"url": self.url + path, "caBundle": self.ca_bundle}

    def received(self, path: str) -> list[dict[str, Any]]:
        return [review for p, review in self.reviews if p == path]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path.split("?", 1)[0]
                status, raw = backend._answer(path, body)
                if backend.delay:
                    backend._stopping.wait(backend.delay)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                return None

        return Handler

    def _answer(self, path: str, body: bytes) -> tuple[int, bytes]:
        reply = self.routes.get(path)
        if reply is None:
            return 404, b"404 page not found"
        review = orjson.loads(body)
        self.reviews.append((path, review))
        out = reply(review)
        if isinstance(out, tuple):
            return out
        response = {"uid": review["request"]["uid"], **out}
        return 200, orjson.dumps({"apiVersion": review.get("apiVersion", "admission.k8s.io/v1"),
                                  "kind": "AdmissionReview", "response": response})

    def start(self) -> WebhookBackend:
        self._server.socket = self._context.wrap_socket(self._server.socket, server_side=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def __enter__(self) -> WebhookBackend:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
