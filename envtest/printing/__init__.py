"""Server-side printing: ``meta.k8s.io/v1 Table`` output for ``kubectl get``, and the JSONPath
that evaluates a CRD's printer columns.
"""
