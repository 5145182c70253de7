"""Request bodies in: JSON, YAML and Kubernetes protobuf (its field tables in ``protobuf``),
the patch media types, and the bounds on what a body may make the server build.
"""
