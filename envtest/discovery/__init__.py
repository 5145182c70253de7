"""The documents clients read before they act: discovery (``/api``, ``/apis``) and OpenAPI v2/v3,
computed from the kind registry.
"""
