"""Readers of what Envoy sends on an ext_proc stream: headers, attributes, dynamic metadata and
gRPC initial metadata."""

from __future__ import annotations

import grpc
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb

SERVED_HEADER = "x-gateway-destination-endpoint-served"
SUBSET_NAMESPACE = "envoy.lb.subset_hint"
SUBSET_KEY = "x-gateway-destination-endpoint-subset"


def headers_of(msg: pb.HttpHeaders) -> dict[str, str]:
    out: dict[str, str] = {}
    for h in msg.headers.headers:
        out[h.key.lower()] = h.raw_value.decode("utf-8", "replace") if h.raw_value else h.value
    return out


def served_address(req: pb.ProcessingRequest) -> str | None:
    attrs = req.attributes.get("envoy.filters.http.ext_proc")
    if attrs is not None and "upstream.address" in attrs.fields:
        return attrs.fields["upstream.address"].string_value or None
    lb = req.metadata_context.filter_metadata.get("envoy.lb")
    if lb is not None and SERVED_HEADER in lb.fields:
        return lb.fields[SERVED_HEADER].string_value or None
    return None


def metadata_value(context: grpc.aio.ServicerContext | None, name: str) -> str | None:
    metadata = context.invocation_metadata() if context is not None else None
    for key, value in metadata or ():
        if key == name:
            return value if isinstance(value, str) else value.decode()
    return None


def subset_hint(req: pb.ProcessingRequest) -> tuple[str, ...] | None:
    """The data plane's endpoint subset (envoy.lb.subset_hint), None when it sent none."""
    hint = req.metadata_context.filter_metadata.get(SUBSET_NAMESPACE)
    if hint is None or SUBSET_KEY not in hint.fields:
        return None
    value = hint.fields[SUBSET_KEY]
    if value.HasField("list_value"):
        return tuple(v.string_value for v in value.list_value.values if v.string_value)
    return tuple(a.strip() for a in value.string_value.split(",") if a.strip())
