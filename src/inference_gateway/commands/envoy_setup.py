"""`inference-gateway envoy-config`: a complete, runnable Envoy setup for your own pods.

From the same resources folder the EPP reads (`epp --resources DIR`) it writes the Envoy
bootstrap and the endpoint (EDS) file(s) that bootstrap points at, and optionally mints mTLS
certificates for Envoy and the EPP. `epp --resources DIR --envoy-eds DIR/xds` then rewrites the
endpoint files whenever the folder changes, so Envoy and the EPP always agree on the pods."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import yaml

from inference_gateway.api.manifests import ResourceSet, load_path
from inference_gateway.api.types import AppProtocol, FailureMode, ObjectRef
from inference_gateway.commands.errors import UsageError
from inference_gateway.datastore.store import Datastore
from inference_gateway.envoy.bootstrap import (
    EnvoyConfig,
    PoolCluster,
    bootstrap,
)
from inference_gateway.envoy.clusters import eds_resource, write_atomically
from inference_gateway.envoy.httproute import parse_httproutes, referenced_pools
from inference_gateway.observability.tls import mint_local_pki

EDS_FILE = "eds.yaml"


@dataclass
class EnvoySetupFlags:
    listen_host: str = "127.0.0.1"
    listen_port: int = 8081
    admin_port: int = 9901
    epp_host: str = "127.0.0.1"
    epp_port: int = 9002
    eds_path: str = "/etc/envoy/xds/eds.yaml"
    fail_open: bool | None = None  # None: from the pools' failureMode (FailClose without resources)
    round_robin: bool = False
    resources: Path | None = None
    out: Path | None = None
    tls: bool = False
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_sni: str = "localhost"
    epp_plaintext: bool = False  # the EPP runs with --secure-serving=false
    response_phases: str = "access-log"  # EnvoyConfig.response_phases
    access_log_flush_ms: int = 10


@dataclass
class EnvoySetup:
    config: EnvoyConfig
    notes: list[str]  # what was written where, and the commands to run next


def _failure_mode(flags: EnvoySetupFlags, resources: ResourceSet | None) -> FailureMode:
    if flags.fail_open is not None:
        return FailureMode.FAIL_OPEN if flags.fail_open else FailureMode.FAIL_CLOSE
    modes = {p.endpoint_picker.failure_mode for p in resources.pools} if resources else set()
    return FailureMode.FAIL_OPEN if modes == {FailureMode.FAIL_OPEN} else FailureMode.FAIL_CLOSE


def _tls(flags: EnvoySetupFlags, notes: list[str]) -> dict[str, str] | None:
    given = (flags.tls_ca, flags.tls_cert, flags.tls_key)
    if any(given) and not all(given):
        raise UsageError("--tls-ca, --tls-cert and --tls-key go together: give all three, or --tls alone")
    if all(given):
        return {
            "ca": str(flags.tls_ca),
            "cert": str(flags.tls_cert),
            "key": str(flags.tls_key),
            "sni": flags.tls_sni,
        }
    if not flags.tls:
        return None
    if flags.out is None:
        raise UsageError("--tls without certificate files mints them into --out DIR: give --out")
    pki = mint_local_pki(flags.out.resolve() / "pki", hosts=(flags.tls_sni, flags.epp_host))
    epp_dir = pki.ca.parent / "epp"
    epp_dir.mkdir(exist_ok=True)
    for name, source in (("tls.crt", pki.server.cert), ("tls.key", pki.server.key), ("ca.crt", pki.ca)):
        target = epp_dir / name
        target.write_bytes(source.read_bytes())
        target.chmod(0o600)
    notes.append(
        f"mTLS certificates in {pki.ca.parent}; run the EPP with "
        f"--secure-serving --cert-path {epp_dir} --require-client-cert"
    )
    return {"ca": str(pki.ca), "cert": str(pki.client_cert), "key": str(pki.client_key), "sni": flags.tls_sni}


def _single_cluster_h2c(
    resources: ResourceSet | None, routed: object, h2c: set[ObjectRef], notes: list[str]
) -> bool:
    """Without HTTPRoutes every pool shares one cluster: HTTP/2 only if every pool asks for it."""
    if resources is None or routed or not h2c:
        return False
    if len(h2c) == len(resources.pools):
        return True
    notes.append(
        "note: some pools have appProtocol kubernetes.io/h2c, others not; without HTTPRoutes they "
        "share one HTTP/1.1 cluster (add HTTPRoutes to give each pool its own)"
    )
    return False


def build_setup(flags: EnvoySetupFlags) -> EnvoySetup:
    notes: list[str] = []
    resources: ResourceSet | None = None
    raw: list[dict] = []
    if flags.resources is not None:
        if not flags.resources.exists():
            raise UsageError(f"{flags.resources}: no such file or directory (--resources)")
        resources = load_path(flags.resources)
        raw = resources.other
        if not resources.pools:
            raise UsageError(f"{flags.resources}: no InferencePool found; the EPP needs one")
    eds_dir = (flags.out.resolve() / "xds") if flags.out else Path(flags.eds_path).parent
    routes = parse_httproutes(raw, str(flags.resources)) if raw else []
    routed = referenced_pools(routes)
    mode = _failure_mode(flags, resources)
    pools: tuple[PoolCluster, ...] = ()
    h2c = {p.ref for p in resources.pools if p.app_protocol == AppProtocol.H2C} if resources else set()
    if routed and resources is not None:
        modes = {p.ref: p.endpoint_picker.failure_mode for p in resources.pools}
        pools = tuple(
            PoolCluster(r, str(eds_dir / f"eds-{r.namespace}-{r.name}.yaml"), modes.get(r, mode), r in h2c)
            for r in routed
        )
    config = EnvoyConfig(
        listen_host=flags.listen_host,
        listen_port=flags.listen_port,
        admin_port=flags.admin_port,
        epp_host=flags.epp_host,
        epp_port=flags.epp_port,
        eds_path=str(eds_dir / EDS_FILE) if flags.out else flags.eds_path,
        failure_mode=mode,
        use_epp=not flags.round_robin,
        epp_tls=_tls(flags, notes),
        epp_tls_unverified=not flags.epp_plaintext,
        pools=pools,
        rules=tuple(routes),
        h2c=_single_cluster_h2c(resources, routed, h2c, notes),
        response_phases=flags.response_phases,
        access_log_flush_ms=flags.access_log_flush_ms,
    )
    return EnvoySetup(config, notes)


def write_setup(setup: EnvoySetup, out: Path, resources: ResourceSet | None) -> list[Path]:
    """Write envoy.yaml and the endpoint file(s) under `out`; return the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    Path(setup.config.eds_path).parent.mkdir(parents=True, exist_ok=True)
    written = [out / "envoy.yaml"]
    write_atomically(written[0], bootstrap(setup.config))
    written += write_endpoints(setup.config, _store(resources))
    return written


def _store(resources: ResourceSet | None) -> Datastore:
    store = Datastore()
    if resources is not None:
        store.replace_all(resources)
    return store


def write_endpoints(config: EnvoyConfig, store: Datastore) -> list[Path]:
    """The EDS file(s) from the datastore: ready pods on their pools' target ports."""
    if config.pools:
        by_pool = {v.pool.ref: [e.address for e in v.ready_endpoints()] for v in store.pools()}
        for pool in config.pools:
            write_atomically(pool.eds_path, eds_resource(by_pool.get(pool.pool, ()), pool.cluster))
        return [Path(p.eds_path) for p in config.pools]
    addresses = [e.address for v in store.pools() for e in v.ready_endpoints()]
    write_atomically(config.eds_path, eds_resource(addresses))
    return [Path(config.eds_path)]


class EndpointFileWriter:
    """Keeps Envoy's EDS file(s) in `eds_dir` equal to the EPP's datastore (`epp --envoy-eds`)."""

    def __init__(self, store: Datastore, eds_dir: Path) -> None:
        self.store = store
        self.eds_dir = eds_dir
        self.eds_dir.mkdir(parents=True, exist_ok=True)

    def config(self) -> EnvoyConfig:
        """Which files to write: one per routed pool if envoy-config wrote those, else eds.yaml."""
        pools = tuple(
            PoolCluster(v.pool.ref, str(self.eds_dir / f"eds-{v.pool.ref.namespace}-{v.pool.ref.name}.yaml"))
            for v in self.store.pools()
        )
        existing = tuple(p for p in pools if Path(p.eds_path).exists())
        return dataclasses.replace(EnvoyConfig(), eds_path=str(self.eds_dir / EDS_FILE), pools=existing)

    def write(self) -> None:
        write_endpoints(self.config(), self.store)


def dump(config: EnvoyConfig) -> str:
    return yaml.safe_dump(bootstrap(config), sort_keys=False)
