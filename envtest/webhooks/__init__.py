"""Webhooks called by the local API server, as kube-apiserver calls them.

* :mod:`.client` — POST a review (admission or conversion) to a webhook's ``clientConfig``
  over TLS, on the server's loop: :func:`post_review`, :class:`WebhookCallError`.
* :mod:`.conversion` — a CRD's conversion webhook (strategy ``Webhook``): the
  ConversionReview sent, the answer checked as kube checks it.
"""

from envtest.webhooks.client import WebhookCallError, post_review

__all__ = ["WebhookCallError", "post_review"]
