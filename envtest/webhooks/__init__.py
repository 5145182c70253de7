"""Webhooks called by the local API server, as kube-apiserver calls them.

* :mod:`.client` — POST a review (admission or conversion) to a webhook's ``clientConfig``
  over TLS, on the server's loop: ``post_review``, ``WebhookCallError``;
* :mod:`.index` — the stored configurations' webhooks, kept current by their commit hooks;
* :mod:`.matching` — which webhooks a request calls (rules, match policy, selectors): pure;
* :mod:`.review` — the AdmissionReview sent and the answer read, kube's errors: pure;
* :mod:`.conversion` — a CRD's conversion webhook (strategy ``Webhook``): the
  ConversionReview sent, the answer checked as kube checks it: pure, and the call;
* :mod:`.chain` — one request's admission: mutating webhooks in order (reinvoked once when
  asked), validating webhooks concurrently.

``post_review`` and ``WebhookCallError`` are also this package's names.
"""

from __future__ import annotations

from typing import Any

__all__ = ["WebhookCallError", "post_review"]


def __getattr__(name: str) -> Any:
    """``post_review`` and ``WebhookCallError`` from :mod:`.client`, imported when asked for
    (the cluster imports :mod:`.index` of this package, and the client imports the cluster)."""
    if name in __all__:
        from envtest.webhooks import client

        return getattr(client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
