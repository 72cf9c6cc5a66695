"""The overhead benchmark's paths (modes) and the Envoy config in front of each; no imports of
the EPP, so a scenario's modes are checked without loading it."""

from __future__ import annotations

from inference_gateway.envoy.bootstrap import EnvoyConfig

MODES = ("backend", "envoy", "envoy+noop", "envoy+epp", "envoy+epp-send")
# Envoy's response phases per mode: the EPP's default ("access-log": reported in batches off the
# critical path), the previous default ("observe": an observability-mode ext_proc stream per
# request), and the response on the critical path (every chunk a round trip), as gateways
# configured by others do.
RESPONSE_PHASES = {"envoy+epp-send": "send", "envoy+epp-observe": "observe", "envoy+noop-observe": "observe"}
# mode -> noop_extproc --server
NOOP_SERVERS = {"envoy+noop": "aio", "envoy+noop-sync": "sync", "envoy+noop-observe": "aio"}
# Every mode a scenario may list: MODES and the optional ones above.
KNOWN_MODES = tuple(dict.fromkeys((*MODES, *NOOP_SERVERS, *RESPONSE_PHASES)))


def envoy_config(mode: str, ext_proc_port: int) -> EnvoyConfig:
    """The Envoy in front of `mode`'s ext_proc server (none for Envoy alone)."""
    return EnvoyConfig(
        listen_port=0,
        epp_port=ext_proc_port,
        use_epp=mode != "envoy",
        response_phases=RESPONSE_PHASES.get(mode, "access-log"),
    )
