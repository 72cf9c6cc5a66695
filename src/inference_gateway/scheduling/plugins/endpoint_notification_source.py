"""endpoint-notification-source (GIE v1.5 / llm-d): endpoint add and delete events for the
extractors wired to it under `dataLayer.sources` (e.g. precise-prefix-cache-scorer, which
opens and closes its per-pod KV-event subscriptions on them).

Here every plugin that tracks endpoints (`EndpointsChanged`) is told the pool's endpoint set
whenever the datastore changes, whether or not this source is declared; declaring it checks
that each extractor listed under it is such a plugin, as upstream checks the extractor type.
"""

from __future__ import annotations

from typing import Any

from inference_gateway.scheduling.interfaces import EndpointsChanged
from inference_gateway.scheduling.params import reject_unknown


class EndpointNotificationSource:
    type_name = "endpoint-notification-source"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        reject_unknown(parameters or {}, frozenset())
        self.name = name

    def accepts_extractor(self, extractor: Any) -> bool:
        return isinstance(extractor, EndpointsChanged)
