"""Kubernetes protobuf request bodies decoded into the dicts a JSON request would produce: the
wire codec (:mod:`.codec`) apart from the schema it reads (:mod:`.tables`, merging each API
group's field tables: :mod:`.core`, :mod:`.apps`, :mod:`.rbac`, :mod:`.networking`,
:mod:`.authentication`)."""

from envtest.codecs.protobuf.codec import MAGIC, ProtobufError, decode_object
from envtest.codecs.protobuf.tables import (
    FIELDS,
    MESSAGES,
    SUPPORTED_KINDS,
    Field,
    merge_messages,
)

__all__ = ["FIELDS", "MAGIC", "MESSAGES", "SUPPORTED_KINDS", "Field", "ProtobufError",
           "decode_object", "merge_messages"]
