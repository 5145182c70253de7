"""The API server's ``Warning`` headers: parsed, and logged once per distinct text.

kube-apiserver warns in response headers (RFC 7234 §5.5, ``Warning: 299 - "text"``) about
deprecated APIs, unknown fields dropped under ``fieldValidation=Warn``, admission webhooks'
remarks. client-go hands each warning of code 299 to a ``WarningHandler``; controller-runtime's
``log.KubeAPIWarningLogger`` logs them, each distinct text once with ``Deduplicate`` — its
default until v0.20, which turned it off because the set of texts seen grows without bound in a
long-running controller. Without it, a reconcile that sends the same deprecated field a
thousand times logs it a thousand times.

:class:`WarningLogger` deduplicates with bounded memory: it remembers the last ``capacity``
distinct texts (least recently seen forgotten first), so a server that puts a fresh name in
every warning cannot grow the process, and logs at WARNING (controller-runtime: info). The
transport owns one (the manager shares one among its transports: once per process); pass your
own :data:`WarningHandler` to collect warnings instead, e.g. in a test. A handler must not
raise: it runs inside the request.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator

log = logging.getLogger(__name__)

WarningHandler = Callable[[int, str, str], None]
"""Called with (code, agent, text) for each warning of a response."""


def parse_warning_headers(values: Iterable[str]) -> Iterator[tuple[int, str, str]]:
    """(code, agent, text) of each warning in the values of ``Warning`` headers.

    A value holds one or more comma-separated warnings ``code SP agent SP "text" [SP "date"]``;
    the text is a quoted string whose backslash escapes are undone. A malformed warning ends the
    value's parsing (as apimachinery's ``ParseWarningHeaders``, which keeps what it parsed
    before).
    """
    for value in values:
        yield from _parse_value(value)


def _parse_value(value: str) -> Iterator[tuple[int, str, str]]:
    rest = value.strip()
    while rest:
        code, _, rest = rest.partition(" ")
        agent, _, rest = rest.lstrip(" ").partition(" ")
        if len(code) != 3 or not code.isdigit() or not agent or not rest.startswith('"'):
            return
        text, rest = _quoted(rest)
        if text is None:
            return
        rest = rest.lstrip(" ")
        if rest.startswith('"'):  # the optional date
            date, rest = _quoted(rest)
            if date is None:
                return
        yield int(code), agent, text
        rest = rest.lstrip(" ")
        if rest and not rest.startswith(","):
            return
        rest = rest[1:].lstrip(" ")


def _quoted(text: str) -> tuple[str | None, str]:
    """The quoted string at the start of ``text`` (unescaped) and what follows it."""
    out = []
    index = 1
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            out.append(text[index + 1])
            index += 2
        elif char == '"':
            return "".join(out), text[index + 1:]
        else:
            out.append(char)
            index += 1
    return None, ""  # no closing quote


class WarningLogger:
    """Logs each distinct warning text of code 299 once, at WARNING. Thread-safe."""

    def __init__(self, *, capacity: int = 4096) -> None:
        if capacity < 1:
            raise ValueError("remember at least one warning")
        self._capacity = capacity
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, code: int, agent: str, text: str) -> None:
        if code != 299 or not text:
            return  # client-go's handlers take 299 ("miscellaneous persistent warning") only
        with self._lock:
            if text in self._seen:
                self._seen.move_to_end(text)
                return
            self._seen[text] = None
            if len(self._seen) > self._capacity:
                self._seen.popitem(last=False)
        log.warning("the API server warns: %s", text, extra={"agent": agent})
