"""destination-endpoint-served-verifier: upstream's conformance plugin. Echoes the endpoint that
served the request (Envoy's `envoy.lb` served-endpoint metadata, else the pick) in the response
header `x-conformance-test-served-endpoint`, so a conformance test can check routing."""

from __future__ import annotations

from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.types import SchedulingRequest

RESULT_HEADER = "x-conformance-test-served-endpoint"


class DestinationEndpointServedVerifier:
    type_name = "destination-endpoint-served-verifier"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        self.name = name

    def response_headers(self, request: SchedulingRequest, served: Endpoint) -> dict[str, str]:
        return {RESULT_HEADER: served.address}
