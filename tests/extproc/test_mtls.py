"""mTLS between the gateway and the EPP: only a client holding a certificate from the CA gets in."""

from __future__ import annotations

from pathlib import Path

import grpc
import orjson
import pytest
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc

from inference_gateway.extproc.server import serve
from inference_gateway.observability.tls import mint_local_pki, server_credentials
from inference_gateway.requestcontrol.director import Director
from inference_gateway.runtime import PoolRuntime
from inference_gateway.scheduling.config import load_config
from tests.extproc.test_extproc_protocol import exchange, request_stream
from tests.helpers import make_store


async def test_epp_requires_client_certificate(tmp_path: Path) -> None:
    pki = mint_local_pki(tmp_path)
    director = Director(make_store(), PoolRuntime(load_config(), flow_control=False))
    server, port = await serve(director, "127.0.0.1", 0, server_credentials(pki.server))
    body = orjson.dumps({"model": "base-model", "prompt": "x"})
    try:
        good = grpc.ssl_channel_credentials(
            root_certificates=pki.ca.read_bytes(),
            private_key=pki.client_key.read_bytes(),
            certificate_chain=pki.client_cert.read_bytes(),
        )
        async with grpc.aio.secure_channel(f"localhost:{port}", good) as channel:
            responses = await exchange(pb_grpc.ExternalProcessorStub(channel), request_stream("duplex", body))
            assert responses[0].WhichOneof("response") == "request_headers"

        no_client_cert = grpc.ssl_channel_credentials(root_certificates=pki.ca.read_bytes())
        async with grpc.aio.secure_channel(f"localhost:{port}", no_client_cert) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await exchange(pb_grpc.ExternalProcessorStub(channel), request_stream("duplex", body))
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE

        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError):
                await exchange(pb_grpc.ExternalProcessorStub(channel), request_stream("duplex", body))
    finally:
        await server.stop(0)
