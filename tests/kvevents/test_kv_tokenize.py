"""The EPP's tokenizers: the leading tokens of a cut prompt equal those of the whole prompt."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference_gateway.kvevents.tokenize import SimPromptTokenizer, load_tokenizer
from inference_gateway.simulator.tokenizer import SimTokenizer, render_chat

TEXT = " ".join(f"word{i % 97} of text{i % 13}, and more" for i in range(3000))


def test_sim_tokenizer_prefix_matches_the_simulators_tokens() -> None:
    full = SimTokenizer().encode(TEXT)
    tok = SimPromptTokenizer()
    assert tok.encode_prompt(TEXT, 256) == full[:256]
    assert tok.encode_prompt("short text", 256) == SimTokenizer().encode("short text")
    messages = [{"role": "user", "content": TEXT}]
    assert tok.encode_chat(messages, 300) == SimTokenizer().encode(render_chat(messages))[:300]
    assert load_tokenizer("") is None


def test_hf_tokenizer_json_adds_special_tokens_and_cuts_safely(tmp_path: Path) -> None:
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import models, pre_tokenizers, processors

    vocab = {"<s>": 0, "[UNK]": 1}
    for word in set(TEXT.replace(",", " ,").split()):
        vocab.setdefault(word, len(vocab))
    vocab[","] = len(vocab)
    hf = tokenizers.Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    hf.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace()])
    hf.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
    path = tmp_path / "tokenizer.json"
    hf.save(str(path))

    tok = load_tokenizer(str(path))
    assert tok is not None
    full = hf.encode(TEXT, add_special_tokens=True).ids
    assert full[0] == 0
    assert tok.encode_prompt(TEXT, 512) == full[:512]
    assert tok.encode_chat([{"role": "user", "content": "x"}], 10) is None  # no chat template
