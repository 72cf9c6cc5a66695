"""Invalid UTF-8 in a request body is named as such (not "surrogates not allowed")."""

from __future__ import annotations

import pytest

from inference_gateway.requestcontrol.body import parse_body
from inference_gateway.requestcontrol.errors import GatewayError


def test_invalid_utf8_names_the_byte() -> None:
    with pytest.raises(GatewayError) as err:
        parse_body(b'{"model": "m", "prompt": "caf\xe9"}')
    assert err.value.status == 400 and err.value.code == "invalid_json"
    assert "not valid UTF-8" in err.value.message and "byte 29" in err.value.message
    assert "surrogates" not in err.value.message
