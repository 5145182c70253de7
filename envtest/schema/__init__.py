"""CRD structural schemas applied to custom resources (prune, default, validate, formats) and
the ``fieldValidation`` of unknown fields in what a client writes.
"""
