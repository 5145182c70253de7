"""A kopf operator whose handlers do what kopf's admission example does
(``examples/17-admission/example.py`` in kopf's repository), for
``tests/envtest/test_admission_kopf.py``.

kopf serves them itself (``kopf.WebhookServer`` on 127.0.0.1, with the certificate the test
made: kopf would otherwise need ``certbuilder``/``oscrypto`` to make one, and its
``WebhookAutoServer`` ``certvalidator`` to look at the API server's) and, with
``settings.admission.managed``, writes the Validating/MutatingWebhookConfigurations itself —
which the local API server then calls. Run by kopf in its own process
(``python -m kopf run``); the test process never imports it.
"""

from __future__ import annotations

import os
from typing import Any

import kopf


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.admission.server = kopf.WebhookServer(
        addr="127.0.0.1", port=int(os.environ["KOPF_WEBHOOK_PORT"]),
        certfile=os.environ["KOPF_WEBHOOK_CERT"], pkeyfile=os.environ["KOPF_WEBHOOK_KEY"],
        cafile=os.environ["KOPF_WEBHOOK_CERT"])
    settings.admission.managed = "auto.kopf.dev"
    settings.watching.connect_timeout = 5
    settings.networking.request_timeout = 30


@kopf.on.validate("kex")
def who(headers: kopf.Headers, sslpeer: kopf.SSLPeer, warnings: list[str], **_: Any) -> None:
    warnings.append(f"Accessing as user-agent: {headers.get('User-Agent', '(unidentified)')}")
    if not sslpeer.get("subject"):
        warnings.append("SSL peer is not identified.")


@kopf.on.validate("kex")
def no_wrong_field(spec: kopf.Spec, dryrun: bool, **_: Any) -> None:
    if not dryrun and spec.get("field") == "wrong":
        raise kopf.AdmissionError("Meh! I don't like it. Change the field.")


@kopf.on.validate("kex", field="spec.field", value="not-allowed")
def too_lazy(**_: Any) -> None:
    raise kopf.AdmissionError("I'm too lazy anyway. Go away!", code=555)


@kopf.on.validate("kex", subresource="*")
def status_follows_spec(spec: kopf.Spec, subresource: str | None, status: kopf.Status,
                        warnings: list[str], **_: Any) -> None:
    if subresource == "status" and status.get("field") != spec.get("field"):
        raise kopf.AdmissionError("status.field MUST be equal to spec.field!")
    if subresource is None and status.get("field") != spec.get("field"):
        warnings.append("Also update status.field to match spec.field: "
                        f"{spec.get('field')!r} != {status.get('field')!r}")


@kopf.on.mutate("kex", labels={"somelabel": "somevalue"})
def inject(patch: kopf.Patch, **_: Any) -> None:
    patch.spec["injected"] = 123
