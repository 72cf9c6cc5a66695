"""Multimodal content parts: identity, token cost by resolution, and the EPP's prompt text."""

from __future__ import annotations

import pytest

from inference_gateway.media import MediaItem, MediaTokenRule, content_parts, message_media
from inference_gateway.requestcontrol.body import prompt_and_media
from inference_gateway.scheduling.plugins.media_token_estimator import MediaTokenEstimator

from .media_helpers import image_chat, png_data_uri, wav_base64

QWEN = MediaTokenRule()


@pytest.mark.parametrize(
    ("size", "tokens"),
    [
        ((224, 224), 64),  # 8 x 8 patches of 28 px
        ((448, 224), 128),
        ((1024, 1024), 1225),  # over max_pixels: scaled down to 980 x 980
        ((10, 10), 4),  # under min_pixels: scaled up to 56 x 56
    ],
)
def test_image_tokens_follow_qwen2_vl_resizing(size: tuple[int, int], tokens: int) -> None:
    assert QWEN.image_cost(*size) == tokens


def test_data_uri_images_are_sized_from_their_header_and_urls_by_default() -> None:
    (item,) = content_parts([{"type": "image_url", "image_url": {"url": png_data_uri(448, 224)}}])
    assert isinstance(item, MediaItem) and (item.width, item.height) == (448, 224)
    assert item.tokens(QWEN) == 128
    assert item.tokens(MediaTokenRule(image_tokens=576)) == 576
    (url,) = content_parts([{"type": "image_url", "image_url": {"url": "https://x/cat.jpg"}}])
    assert isinstance(url, MediaItem) and url.tokens(QWEN) == 1225


def test_audio_costs_tokens_per_second() -> None:
    audio = {"type": "input_audio", "input_audio": {"data": wav_base64(2.0), "format": "wav"}}
    parts = content_parts([audio])
    assert isinstance(parts[0], MediaItem) and parts[0].seconds == pytest.approx(2.0)
    assert parts[0].tokens(QWEN) == 50


def test_same_content_same_digest() -> None:
    a, b = png_data_uri(64, 64), png_data_uri(64, 64, (0, 0, 255))
    first = message_media(image_chat("m", a, "q1")["messages"])
    again = message_media(image_chat("m", a, "q2")["messages"])
    other = message_media(image_chat("m", b, "q1")["messages"])
    assert first[0].digest == again[0].digest != other[0].digest


def test_prompt_text_carries_the_image_so_reuse_shares_a_prefix() -> None:
    image = png_data_uri(448, 224)
    one, tokens = prompt_and_media(image_chat("m", image, "What is in it?"), QWEN)
    two, _ = prompt_and_media(image_chat("m", image, "Describe the colours."), QWEN)
    other, _ = prompt_and_media(image_chat("m", png_data_uri(448, 224, (1, 2, 3)), "What is in it?"), QWEN)
    assert tokens == 128
    shared = next(i for i, (x, y) in enumerate(zip(one, two, strict=False)) if x != y)
    assert shared >= 128 * 4  # the image's placeholder is as long as its tokens' text
    assert one[:10] == other[:10] and one[: 128 * 4] != other[: 128 * 4]
    text_only, none = prompt_and_media(image_chat("m", image, "What is in it?"), None)
    assert none == 0 and "image:" not in text_only


def test_estimator_rules_per_model() -> None:
    params = {"models": {"llava": {"imageTokens": 576}}, "default": {"maxPixels": 200704}}
    est = MediaTokenEstimator("m", params)
    assert est.rule_for("llava") == MediaTokenRule(image_tokens=576)
    rule = est.rule_for("qwen")
    assert rule is not None and rule.image_cost(1024, 1024) == 256
    assert MediaTokenEstimator("m", {"hashMedia": False}).rule_for("x") is None
    with pytest.raises(ValueError, match=r"models\.llava: imageTokens must be a positive number"):
        MediaTokenEstimator("m", {"models": {"llava": {"imageTokens": 0}}})
    with pytest.raises(ValueError, match="unknown field"):
        MediaTokenEstimator("m", {"default": {"tokensPerImage": 5}})
