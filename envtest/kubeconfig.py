"""A kubeconfig that points clients at a local API server: its URL, the CA that signed its
serving certificate when it speaks HTTPS (``certificate-authority-data``: clients verify the
server, as against any cluster), and the administrator's bearer token, which only a
TokenReview looks at."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import yaml


def render(url: str, *, name: str = "envtest", namespace: str = "default",
           token: str = "", ca_pem: bytes = b"") -> str:
    cluster: dict[str, str] = {"server": url}
    if ca_pem:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": {"token": token} if token else {}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name,
                                                "namespace": namespace}}],
        "current-context": name,
        "preferences": {},
    }
    return yaml.safe_dump(config, sort_keys=False)


def write(path: str | os.PathLike[str], url: str, *, token: str = "",
          ca_pem: bytes = b"") -> Path:
    """Write the kubeconfig atomically (readers never see half a file), mode 0600."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(render(url, token=token, ca_pem=ca_pem))
    partial.replace(target)
    return target
