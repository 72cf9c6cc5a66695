"""Stand-ins for the plugin types upstream's own loader tests register (configloader_test.go's
registerTestPlugins): a plain plugin, a scorer that decodes `blockSize` as an integer, a picker,
a profile handler, a data source and an extractor. Only the upstream test fixtures use them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.params import get_int
from inference_gateway.scheduling.registry import PluginRegistry, default_registry
from inference_gateway.scheduling.types import CycleState, ProfileResult, SchedulingRequest


class _Named:
    type_name = ""

    def __init__(self, name: str = "", parameters: dict[str, Any] | None = None) -> None:
        self.name = name or self.type_name


class TestPlugin(_Named):
    type_name = "test-plugin"


class TestScorer(_Named):
    type_name = "test-scorer"

    def __init__(self, name: str = "", parameters: dict[str, Any] | None = None) -> None:
        super().__init__(name)
        get_int(parameters or {}, "blockSize", 0)  # upstream's mock unmarshals it as an int

    def score(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> list[float]:
        return [0.0] * len(endpoints)


class TestPicker(_Named):
    type_name = "test-picker"

    def pick(self, state: CycleState, endpoints: Sequence[Endpoint], totals: list[float]) -> list[Endpoint]:
        return list(endpoints[:1])


class TestProfileHandler(_Named):
    type_name = "test-profile-handler"

    def pick_profiles(
        self,
        state: CycleState,
        request: SchedulingRequest,
        profiles: Sequence[str],
        done: dict[str, ProfileResult],
    ) -> list[str]:
        return [] if done else list(profiles)

    def primary(self, results: dict[str, ProfileResult]) -> str:
        return next(iter(results))


class TestSource(_Named):
    type_name = "test-source"

    def accepts_extractor(self, extractor: Any) -> bool:
        return True


class TestExtractor(_Named):
    type_name = "test-extractor"
    extracts = "test"


class TestOrderFilter(_Named):
    """configloader_test.go's filter that records the order filters run in."""

    type_name = "test-order-filter"

    def filter(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> Sequence[Endpoint]:
        state.setdefault("order", []).append(self.name)
        return endpoints


class MockMetricsSource(TestSource):
    """test/integration/epp's harness registers this data source."""

    type_name = "mock-metrics-source"


DOUBLES = (
    TestPlugin,
    TestScorer,
    TestPicker,
    TestProfileHandler,
    TestSource,
    TestExtractor,
    TestOrderFilter,
    MockMetricsSource,
)


def registry_with_doubles() -> PluginRegistry:
    registry = default_registry()
    for cls in DOUBLES:
        registry.register(cls.type_name, cls)
    return registry
