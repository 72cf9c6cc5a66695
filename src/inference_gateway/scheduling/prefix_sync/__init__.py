"""Shared prefix-cache index across EPP replicas (active-active); see docs/replicas.md.

Each replica streams the index additions it makes after a pick to its peers, in small
batches over a bytes-only gRPC method, and applies its peers' additions to its own
PrefixIndex without passing them on.
"""

from inference_gateway.scheduling.prefix_sync.discovery import DnsPeers, PeerSource, StaticPeers
from inference_gateway.scheduling.prefix_sync.hub import PrefixSyncHub, SyncStats, prefix_scorers
from inference_gateway.scheduling.prefix_sync.service import PrefixSync, PrefixSyncOptions
from inference_gateway.scheduling.prefix_sync.updates import (
    IndexUpdate,
    UpdateQueue,
    decode_batch,
    encode_batch,
)

__all__ = [
    "DnsPeers",
    "IndexUpdate",
    "PeerSource",
    "PrefixSync",
    "PrefixSyncHub",
    "PrefixSyncOptions",
    "StaticPeers",
    "SyncStats",
    "UpdateQueue",
    "decode_batch",
    "encode_batch",
    "prefix_scorers",
]
