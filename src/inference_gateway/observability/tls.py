"""TLS material: load it from files for the EPP's gRPC server and the scraper, or mint it for local runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc


@dataclass(frozen=True)
class TLSFiles:
    cert: Path
    key: Path
    ca: Path | None = None  # when set, peers must present a certificate signed by it (mTLS)


def server_credentials(files: TLSFiles) -> grpc.ServerCredentials:
    pair = [(files.key.read_bytes(), files.cert.read_bytes())]
    if files.ca is None:
        return grpc.ssl_server_credentials(pair)
    return grpc.ssl_server_credentials(
        pair, root_certificates=files.ca.read_bytes(), require_client_auth=True
    )


def self_signed_credentials(hosts: tuple[str, ...] = ("localhost", "127.0.0.1")) -> grpc.ServerCredentials:
    """Secure serving without --cert-path, as upstream's EPP: a certificate minted at start.
    Gateways encrypt to it without verifying it (upstream's reference Envoy does exactly that)."""
    import trustme

    cert = trustme.CA().issue_cert(*hosts)
    chain = b"".join(blob.bytes() for blob in cert.cert_chain_pems)
    return grpc.ssl_server_credentials([(cert.private_key_pem.bytes(), chain)])


@dataclass(frozen=True)
class LocalPKI:
    ca: Path
    server: TLSFiles
    client_cert: Path
    client_key: Path


def mint_local_pki(directory: Path, hosts: tuple[str, ...] = ("localhost", "127.0.0.1")) -> LocalPKI:
    """A throwaway CA with a server certificate for the EPP and a client certificate for Envoy."""
    import trustme

    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    server = ca.issue_cert(*hosts)
    client = ca.issue_cert("envoy-gateway")
    paths = {
        name: directory / name for name in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")
    }
    ca.cert_pem.write_to_path(str(paths["ca.pem"]))
    server.private_key_pem.write_to_path(str(paths["server.key"]))
    client.private_key_pem.write_to_path(str(paths["client.key"]))
    for blob_target, blobs in (
        ("server.pem", server.cert_chain_pems),
        ("client.pem", client.cert_chain_pems),
    ):
        paths[blob_target].write_bytes(b"".join(b.bytes() for b in blobs))
    for p in paths.values():
        p.chmod(0o600)
    return LocalPKI(
        ca=paths["ca.pem"],
        server=TLSFiles(paths["server.pem"], paths["server.key"], paths["ca.pem"]),
        client_cert=paths["client.pem"],
        client_key=paths["client.key"],
    )
