"""llm-d's models-data-source parameters (scheme, insecureSkipVerify) and its
models-data-extractor: the wiring loads and is checked, and https model lists are read with or
without certificate checks."""

from __future__ import annotations

import ssl

import orjson
import pytest
import trustme
from aiohttp import web
from tests.helpers import make_store

from inference_gateway.api.types import ObjectRef
from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.metrics.inventory import ModelInventory
from inference_gateway.scheduling.config import ConfigError, load_config
from inference_gateway.scheduling.plugins.models_data_source import ModelsDataSource

CONFIG = """
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: models-data-source
  name: vllm-models-source
  parameters: {{scheme: https, insecureSkipVerify: {insecure}}}
- type: models-data-extractor
  name: vllm-models-extractor
- type: core-metrics-extractor
- type: queue-scorer
dataLayer:
  sources:
  - pluginRef: vllm-models-source
    extractors: [{{pluginRef: {extractor}}}]
"""


def source(insecure: str = "true", extractor: str = "vllm-models-extractor") -> ModelsDataSource:
    config = load_config(CONFIG.format(insecure=insecure, extractor=extractor))
    plugin = config.plugins["vllm-models-source"]
    assert isinstance(plugin, ModelsDataSource)
    return plugin


def test_extractor_wiring_is_checked() -> None:
    assert source().config.scheme == "https" and source().scheme_given
    with pytest.raises(ConfigError, match="does not read 'vllm-models-source'"):
        source(extractor="core-metrics-extractor")
    with pytest.raises(ConfigError, match="must be true or false"):
        source(insecure="'maybe'")


async def test_insecure_skip_verify_decides_whether_https_lists_are_trusted() -> None:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    app = web.Application()
    listing = {"object": "list", "data": [{"id": "base", "parent": None}, {"id": "sql", "parent": "base"}]}

    async def models(_: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(listing), content_type="application/json")

    app.router.add_get("/v1/models", models)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        results = []
        for insecure in ("true", "false"):
            inventory = ModelInventory(make_store(0), source(insecure).config)
            served = await inventory.refresh(Endpoint("pod", ObjectRef("ns", "pod"), "127.0.0.1", port, {}))
            results.append(served.adapters if served is not None else None)
            await inventory.stop()
        assert results == [{"sql": "base"}, None]
    finally:
        await runner.cleanup()
