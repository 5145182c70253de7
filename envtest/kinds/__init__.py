"""What the server serves: the kind registry, CRDs turned into kinds, and each built-in kind's
defaulting and validation; generic object-metadata rules and selectable fields.
"""
