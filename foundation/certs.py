"""X.509 certificates made in memory, and TLS server contexts from them.

* :func:`self_signed`: one serving certificate that signs itself (the metrics listener's when
  no files are given; controller-runtime generates one the same way).
* :func:`certificate_authority` and :func:`issue`: a CA and a serving certificate it signs
  (the local API server's, as envtest and kind do: clients pin the CA, which the kubeconfig
  carries, and verify the serving certificate's names against the URL).
* :func:`server_context`: an ``ssl.SSLContext`` for a server from PEM bytes that never touch
  a disk: they reach OpenSSL through anonymous memory files (``memfd``) where Linux has them.

Keys are ECDSA P-256 (fast to make and to handshake with: a new pair costs about a
millisecond); certificates name ``localhost``, ``127.0.0.1`` and ``::1`` unless told others.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOCAL_HOSTS = ("localhost",)
LOCAL_IPS = ("127.0.0.1", "::1")
VALIDITY = dt.timedelta(days=365)


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A certificate and its private key, both PEM."""

    cert_pem: bytes
    key_pem: bytes


def _key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _usage(*, signs: bool) -> Any:
    from cryptography import x509

    return x509.KeyUsage(
        digital_signature=True, key_encipherment=False, content_commitment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=signs, crl_sign=signs,
        encipher_only=False, decipher_only=False)


def _build(subject: Any, issuer: Any, public_key: Any, validity: dt.timedelta) -> Any:
    from cryptography import x509

    now = dt.datetime.now(dt.UTC)
    return (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))  # clocks a little behind
            .not_valid_after(now + validity))


def _serving(builder: Any, hosts: tuple[str, ...], ips: tuple[str, ...]) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    alt_names: list[x509.GeneralName] = [x509.DNSName(h) for h in hosts]
    alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    return (builder
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(signs=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName(alt_names), critical=False))


def _pair(cert: Any, key: Any) -> KeyPair:
    from cryptography.hazmat.primitives import serialization

    return KeyPair(cert.public_bytes(serialization.Encoding.PEM),
                   key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))


def self_signed(hosts: tuple[str, ...] = LOCAL_HOSTS, ips: tuple[str, ...] = LOCAL_IPS,
                validity: dt.timedelta = VALIDITY) -> tuple[bytes, bytes]:
    """``(certificate PEM, private key PEM)`` of a new self-signed serving certificate."""
    from cryptography.hazmat.primitives import hashes

    key = _key()
    name = _name(f"{hosts[0]}@{int(dt.datetime.now(dt.UTC).timestamp())}")
    cert = _serving(_build(name, name, key.public_key(), validity), hosts, ips)
    pair = _pair(cert.sign(key, hashes.SHA256()), key)
    return pair.cert_pem, pair.key_pem


def certificate_authority(common_name: str, validity: dt.timedelta = VALIDITY) -> KeyPair:
    """A new CA that can sign serving certificates (and nothing below them: path length 0)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    key = _key()
    name = _name(f"{common_name}@{int(dt.datetime.now(dt.UTC).timestamp())}")
    cert = (_build(name, name, key.public_key(), validity)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_usage(signs=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return _pair(cert, key)


def issue(ca: KeyPair, common_name: str, hosts: tuple[str, ...] = LOCAL_HOSTS,
          ips: tuple[str, ...] = LOCAL_IPS, validity: dt.timedelta = VALIDITY) -> KeyPair:
    """A new serving certificate for ``hosts`` and ``ips``, signed by ``ca``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key: Any = serialization.load_pem_private_key(ca.key_pem, password=None)
    key = _key()
    builder = _serving(_build(_name(common_name), ca_cert.subject, key.public_key(), validity),
                       hosts, ips)
    cert = (builder
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return _pair(cert, key)


def server_context(cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    """A server context presenting this pair: TLS 1.2 or later, HTTP/1.1 by ALPN."""
    context = new_server_context()
    with pem_files(cert_pem, key_pem) as (cert_path, key_path):
        context.load_cert_chain(cert_path, key_path)
    return context


def new_server_context() -> ssl.SSLContext:
    """An empty server context: TLS 1.2 or later, HTTP/1.1 by ALPN (no HTTP/2 here)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    return context


@contextlib.contextmanager
def pem_files(cert_pem: bytes, key_pem: bytes) -> Iterator[tuple[str, str]]:
    """Paths OpenSSL can read the two PEMs from (the ssl module loads only from paths):
    anonymous memory files where the platform has them, else a private temporary directory,
    removed on exit."""
    memfd = getattr(os, "memfd_create", None)
    if memfd is not None and Path("/proc/self/fd").is_dir():
        fds = [memfd(name, os.MFD_CLOEXEC) for name in ("tls-cert", "tls-key")]
        try:
            for fd, pem in zip(fds, (cert_pem, key_pem), strict=True):
                os.write(fd, pem)
            yield f"/proc/self/fd/{fds[0]}", f"/proc/self/fd/{fds[1]}"
        finally:
            for fd in fds:
                os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="tls-") as directory:
        cert_path, key_path = Path(directory, "tls.crt"), Path(directory, "tls.key")
        for path, pem in ((cert_path, cert_pem), (key_path, key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
        yield str(cert_path), str(key_path)
