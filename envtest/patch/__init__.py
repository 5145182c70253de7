"""The PATCH dialects kube-apiserver accepts besides apply, as pure functions on decoded JSON:
JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge patch.
"""
