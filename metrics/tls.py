"""The certificate the secure metrics listener presents.

As controller-runtime's metrics server with ``SecureServing``:

* **From files** (a cert-manager or Secret mount): the certificate chain and key are loaded at
  start and loaded again when either file changes — checked (``stat``: modification time,
  size, inode, so a Secret volume's symlink swap counts) as each connection is accepted, the
  way controller-runtime's certwatcher reloads on change. A pair that cannot be loaded (half
  written, key and certificate not matching) is logged and the previous one kept; at start it
  is an error.
* **Self-signed** when no files are given: an ECDSA P-256 key and a certificate for
  ``localhost``, ``127.0.0.1`` and ``::1`` valid for a year, made in memory at start
  (controller-runtime generates one the same way; it is enough to encrypt the scrape, whose
  client skips verification or pins nothing). The key never touches a disk: it reaches
  OpenSSL through an anonymous memory file (``memfd``) where Linux has one.

Connections get TLS 1.2 or later and HTTP/1.1 by ALPN (kubebuilder turns HTTP/2 off for the
metrics server too).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import logging
import os
import ssl
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

SELF_SIGNED_HOSTS = ("localhost",)
SELF_SIGNED_IPS = ("127.0.0.1", "::1")
SELF_SIGNED_VALIDITY = dt.timedelta(days=365)

_Stamp = tuple[tuple[int, int, int], tuple[int, int, int]]


def _new_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    return context


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
            cert_pem, key_pem = self_signed()
            self._context = _new_context()
            with _pem_files(cert_pem, key_pem) as (cert_path, key_path):
                self._context.load_cert_chain(cert_path, key_path)
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
        context = _new_context()
        context.load_cert_chain(*self._files)
        return context


def self_signed(hosts: tuple[str, ...] = SELF_SIGNED_HOSTS,
                ips: tuple[str, ...] = SELF_SIGNED_IPS,
                validity: dt.timedelta = SELF_SIGNED_VALIDITY) -> tuple[bytes, bytes]:
    """``(certificate PEM, private key PEM)`` of a new self-signed serving certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                         f"{hosts[0]}@{int(now.timestamp())}")])
    alt_names: list[x509.GeneralName] = [x509.DNSName(h) for h in hosts]
    alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))  # clocks a little behind
            .not_valid_after(now + validity)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_encipherment=False, content_commitment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


@contextlib.contextmanager
def _pem_files(cert_pem: bytes, key_pem: bytes) -> Iterator[tuple[str, str]]:
    """Paths OpenSSL can read the two PEMs from (the ssl module loads only from paths):
    anonymous memory files where the platform has them, else a private temporary directory,
    removed on exit."""
    memfd = getattr(os, "memfd_create", None)
    if memfd is not None and Path("/proc/self/fd").is_dir():
        fds = [memfd(name, os.MFD_CLOEXEC) for name in ("metrics-cert", "metrics-key")]
        try:
            for fd, pem in zip(fds, (cert_pem, key_pem), strict=True):
                os.write(fd, pem)
            yield f"/proc/self/fd/{fds[0]}", f"/proc/self/fd/{fds[1]}"
        finally:
            for fd in fds:
                os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="metrics-tls-") as directory:
        cert_path, key_path = Path(directory, "tls.crt"), Path(directory, "tls.key")
        for path, pem in ((cert_path, cert_pem), (key_path, key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
        yield str(cert_path), str(key_path)
