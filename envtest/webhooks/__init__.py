"""Webhooks the local API server calls: CRD conversion (:mod:`.conversion`), through the
shared HTTPS client (:mod:`.client`)."""
