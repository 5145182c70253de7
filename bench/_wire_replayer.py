"""The wire floor's client: a bare process that replays an operator's recorded writes and reads
its watches, and does nothing else. ``bench/wire_floor.py`` runs it; it imports only the
standard library, urllib3 and orjson, so its CPU is what the wire costs a Python process.

* **watches**: one thread per recorded watch, each a urllib3 streaming GET, its chunks split
  into lines and every line ``orjson.loads``-ed (the event is then dropped);
* **writes**: ``workers`` threads (the operator's ``--max-concurrent-reconciles``) on one
  keep-alive urllib3 pool (or, with ``"http": "raw"``, a socket each driven by hand:
  :class:`RawConnection`) (the API server's own, without the pool manager's per-request
  look-up); each takes the next session from a queue and sends that session's writes in their
  recorded order (a session's writes depend on each other: the TokenRequest needs its
  ServiceAccount), with the recorded method, target, content type, accept and body; an answer
  is read whole, and parsed only for a TokenRequest (the token is what any operator must take
  from it).

CPU is counted per thread (``time.thread_time``): each watch thread from the moment its
watch is open, each writer from its start. Loading the plan (the main thread) is not counted.

Protocol, one JSON document a line: stdin ``{"url", "watches": [target, ...], "workers",
"quiet", "http": "urllib3" | "raw"}``
→ stdout ``{"ready": true}`` once every watch is open → stdin ``{"plan": PATH}`` (a JSON
file: ``[[session, [[verb, resource, method, target, headers, body], ...]], ...]``) →
stdout ``{"result": {...}}`` after the last write and ``quiet`` seconds without a watch event.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import sys
import threading
import time
from collections import Counter
from typing import Any

import orjson
import urllib3

AGENT = "ambient-floor/1"
TOKEN_REQUESTS = "serviceaccounts/token"


class Watches:
    """The recorded watches, each read by a thread of its own."""

    def __init__(self, url: str, targets: list[str]) -> None:
        self._http = urllib3.PoolManager(maxsize=max(1, len(targets)), retries=False,
                                         timeout=urllib3.Timeout(connect=5, read=None))
        self._url = url
        self._lock = threading.Lock()
        self._opened = threading.Semaphore(0)
        self._responses: list[urllib3.BaseHTTPResponse] = []
        self.cpu = 0.0
        self.events = 0
        self.bytes = 0
        self.errors: list[str] = []
        self.last_event = time.monotonic()
        self._threads = [threading.Thread(target=self._read, args=(t,), name=f"watch-{i}",
                                          daemon=True) for i, t in enumerate(targets)]

    def open(self, timeout: float = 30.0) -> None:
        for thread in self._threads:
            thread.start()
        for _ in self._threads:
            if not self._opened.acquire(timeout=timeout):
                raise RuntimeError("a watch did not open")

    def _read(self, target: str) -> None:
        events = size = 0
        base = time.thread_time()
        try:
            response = self._http.request("GET", self._url + target, preload_content=False,
                                          headers={"User-Agent": AGENT,
                                                   "Accept": "application/json"})
            with self._lock:
                self._responses.append(response)
            if response.status != 200:
                raise RuntimeError(f"{response.status} {response.data[:200]!r}")
            base = time.thread_time()
            self._opened.release()
            buffer = b""
            for chunk in response.stream(1 << 16):
                size += len(chunk)
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    orjson.loads(line)
                    events += 1
                self.last_event = time.monotonic()
        except Exception as exc:  # the stream ended (closed by us), or failed
            if not self._closing:
                self.errors.append(f"{target}: {exc!r}")
                self._opened.release()
        finally:
            with self._lock:
                self.cpu += time.thread_time() - base
                self.events += events
                self.bytes += size

    _closing = False

    def close(self) -> None:
        self._closing = True
        with self._lock:
            responses = list(self._responses)
        for response in responses:
            with contextlib.suppress(Exception):
                response.shutdown()
        for thread in self._threads:
            thread.join(10)
        self._http.clear()


class RawConnection:
    """One keep-alive HTTP/1.1 connection driven by hand: the request written as one buffer,
    the answer read by ``readline`` and its ``Content-Length`` (or chunks) — the least a
    Python client can do per request (urllib3 and http.client build the request header by
    header and parse the answer's headers with the email package)."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        self._host = f"{host}:{port}"
        self._sock = socket.create_connection((host, int(port)), timeout=60)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._reader = self._sock.makefile("rb")

    def request(self, method: str, target: str, headers: dict[str, str],
                body: bytes) -> tuple[int, bytes]:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._sock.sendall(f"{method} {target} HTTP/1.1\r\nHost: {self._host}\r\n{head}"
                           f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        status = int(self._reader.readline().split(b" ", 2)[1])
        length, chunked = 0, False
        while (line := self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name = name.lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
        if not chunked:
            return status, self._reader.read(length)
        parts = []
        while (size := int(self._reader.readline().split(b";")[0], 16)):
            parts.append(self._reader.read(size))
            self._reader.readline()
        self._reader.readline()
        return status, b"".join(parts)

    def close(self) -> None:
        self._reader.close()
        self._sock.close()


def send_all(url: str, plan: list[Any], workers: int, http_client: str = "urllib3"
             ) -> dict[str, Any]:
    """Every session's writes, ``workers`` sessions at a time; statuses and CPU. Writes go
    through urllib3 (``http_client="urllib3"``, issue 20's floor) or one
    :class:`RawConnection` per writer (``"raw"``)."""
    http = urllib3.PoolManager(maxsize=workers, retries=False,
                               timeout=urllib3.Timeout(connect=5, read=60))
    # The host's pool itself: one host, so the manager's per-request URL parse and pool look-up
    # is work a least-cost client does not do (informers.rest.Transport does the same).
    pool = http.connection_from_url(url)

    def urllib3_send(method: str, target: str, headers: dict[str, str],
                     body: bytes) -> tuple[int, bytes]:
        response = pool.urlopen(method, target, body=body, headers=headers,
                                redirect=False, assert_same_host=False)
        return response.status, response.data
    sessions: queue.SimpleQueue[list[Any]] = queue.SimpleQueue()
    for _, writes in plan:
        sessions.put(writes)
    statuses: Counter[str] = Counter()
    lock = threading.Lock()
    totals = {"cpu": 0.0, "bytes": 0}

    def work() -> None:
        raw = RawConnection(url) if http_client == "raw" else None
        send = raw.request if raw is not None else urllib3_send
        base, sent, seen = time.thread_time(), 0, Counter[str]()
        try:
            while True:
                try:
                    writes = sessions.get_nowait()
                except queue.Empty:
                    return
                for verb, resource, method, target, headers, body in writes:
                    status, data = send(method, target, headers, body)
                    sent += len(body)
                    if resource == TOKEN_REQUESTS and status == 201:
                        orjson.loads(data)
                    seen[f"{verb} {resource} {status}"] += 1
        finally:
            if raw is not None:
                raw.close()
            with lock:
                totals["cpu"] += time.thread_time() - base
                totals["bytes"] += sent
                statuses.update(seen)

    threads = [threading.Thread(target=work, name=f"writer-{i}") for i in range(workers)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    http.clear()
    return {"statuses": dict(sorted(statuses.items())), "cpu": totals["cpu"],
            "bytes": totals["bytes"], "seconds": time.monotonic() - started}


def _load_plan(path: str) -> list[Any]:
    """The plan, with each body as bytes and the agent set (outside every counted thread)."""
    with open(path, "rb") as plan_file:
        plan: list[Any] = orjson.loads(plan_file.read())
    for _, writes in plan:
        for write in writes:
            write[4] = {**write[4], "User-Agent": AGENT}
            write[5] = write[5].encode()
    return plan


def main(timeout: float = 120.0) -> int:
    setup = orjson.loads(sys.stdin.readline())
    url, workers, quiet = setup["url"], int(setup["workers"]), float(setup.get("quiet", 2.0))
    watches = Watches(url, setup["watches"])
    try:
        watches.open()
        print(orjson.dumps({"ready": True, "errors": watches.errors}).decode(), flush=True)
        plan = _load_plan(orjson.loads(sys.stdin.readline())["plan"])
        writes = send_all(url, plan, workers, str(setup.get("http", "urllib3")))
        deadline = time.monotonic() + timeout
        while time.monotonic() - watches.last_event < quiet and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        watches.close()
    result = {"writes": writes, "watch": {"cpu": watches.cpu, "events": watches.events,
                                          "bytes": watches.bytes, "errors": watches.errors,
                                          "streams": len(setup["watches"])}}
    print(orjson.dumps({"result": result}).decode(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
