"""Kubernetes protobuf request bodies decoded into the dicts a JSON request would produce: the
wire codec (``codec``) apart from the per-group field tables it reads.
"""
