"""The Endpoint Picker runtime: datastore + metrics scraper + director + ext_proc server."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import grpc

from inference_gateway.datastore.store import Datastore
from inference_gateway.extproc.server import serve
from inference_gateway.metrics.scraper import ScrapeConfig, Scraper
from inference_gateway.requestcontrol.director import Director
from inference_gateway.scheduling.config import EndpointPickerConfig, load_config

log = logging.getLogger(__name__)


@dataclass
class EPPOptions:
    host: str = "127.0.0.1"
    grpc_port: int = 9002
    config_text: str | None = None
    scrape: ScrapeConfig = field(default_factory=ScrapeConfig)
    max_body_bytes: int = 16 * 1024 * 1024


class EndpointPicker:
    def __init__(self, options: EPPOptions, store: Datastore | None = None) -> None:
        self.options = options
        self.store = store or Datastore()
        self.config: EndpointPickerConfig = load_config(options.config_text)
        self.director = Director(self.store, self.config.scheduler, max_body_bytes=options.max_body_bytes)
        self.scraper = Scraper(self.store, options.scrape)
        self._server: grpc.aio.Server | None = None
        self.port = 0

    async def start(self, credentials: grpc.ServerCredentials | None = None) -> int:
        await self.scraper.start()
        self._server, self.port = await serve(
            self.director, self.options.host, self.options.grpc_port, credentials
        )
        log.info("EPP ext_proc listening on %s:%d", self.options.host, self.port)
        return self.port

    async def stop(self, grace_s: float = 1.0) -> None:
        if self._server is not None:
            await self._server.stop(grace_s)
        await self.scraper.stop()
