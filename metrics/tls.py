"""The certificate the secure metrics listener presents.

As controller-runtime's metrics server with ``SecureServing``:

* **From files** (a cert-manager or Secret mount): the certificate chain and key are loaded at
  start and loaded again when either file changes — checked (``stat``: modification time,
  size, inode, so a Secret volume's symlink swap counts) as each connection is accepted, the
  way controller-runtime's certwatcher reloads on change. A pair that cannot be loaded (half
  written, key and certificate not matching) is logged and the previous one kept; at start it
  is an error.
* **Self-signed** when no files are given: an ECDSA P-256 key and a certificate for
  ``localhost``, ``127.0.0.1`` and ``::1`` valid for a year, made in memory at start by
  :mod:`foundation.certs` (controller-runtime generates one the same way; it is enough to
  encrypt the scrape, whose client skips verification or pins nothing). The key never
  touches a disk: it reaches OpenSSL through an anonymous memory file (``memfd``) where Linux
  has one.

Connections get TLS 1.2 or later and HTTP/1.1 by ALPN (kubebuilder turns HTTP/2 off for the
metrics server too).
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from pathlib import Path

from foundation.certs import new_server_context, self_signed, server_context

__all__ = ["ServingCertificate", "self_signed"]

log = logging.getLogger(__name__)

_Stamp = tuple[tuple[int, int, int], tuple[int, int, int]]


class ServingCertificate:
    """The TLS context for each new connection: :meth:`context`.

    ``cert_file`` and ``key_file`` both given: served from those files and reloaded when they
    change. Neither: a self-signed certificate made now. One without the other is an error.
    """

    def __init__(self, cert_file: str | os.PathLike[str] | None = None,
                 key_file: str | os.PathLike[str] | None = None) -> None:
        if bool(cert_file) != bool(key_file):
            raise ValueError("give both a certificate and a key file, or neither")
        self._files = (Path(cert_file), Path(key_file)) if cert_file and key_file else None
        self._lock = threading.Lock()
        self._stamp: _Stamp | None = None
        if self._files is None:
            self._context = server_context(*self_signed())
        else:
            self._stamp = self._stat()
            self._context = self._load()  # errors here stop the start, with the reason

    @property
    def self_signed(self) -> bool:
        return self._files is None

    def context(self) -> ssl.SSLContext:
        """The context to wrap a new connection with (the files' current pair)."""
        if self._files is None:
            return self._context
        with self._lock:
            try:
                stamp = self._stat()
            except OSError as error:
                log.warning("serving certificate files unreadable; serving the last pair",
                            extra={"cert": str(self._files[0]), "error": str(error)})
                return self._context
            if stamp != self._stamp:
                try:
                    self._context = self._load()
                    log.info("serving certificate reloaded",
                             extra={"cert": str(self._files[0])})
                except (OSError, ssl.SSLError) as error:
                    log.warning("serving certificate could not be reloaded; serving the last "
                                "pair", extra={"cert": str(self._files[0]), "error": str(error)})
                self._stamp = stamp  # a bad pair is tried again once the files change again
            return self._context

    def _stat(self) -> _Stamp:
        assert self._files is not None
        cert, key = (os.stat(path) for path in self._files)
        return ((cert.st_mtime_ns, cert.st_size, cert.st_ino),
                (key.st_mtime_ns, key.st_size, key.st_ino))

    def _load(self) -> ssl.SSLContext:
        assert self._files is not None
        context = new_server_context()
        context.load_cert_chain(*self._files)
        return context
