"""Build a tiny random Llama, its tokenizer and one LoRA adapter on disk, with no hub download.

Run with the interpreter of the vLLM venv (it has torch, transformers, tokenizers and peft):
    python tests/realvllm/make_model.py OUT_DIR
Writes OUT_DIR/base (model + tokenizer) and OUT_DIR/lora-a, OUT_DIR/lora-b (PEFT adapters).
The weights are random: the servers produce gibberish, which is all routing tests need.
"""

from __future__ import annotations

import sys
from pathlib import Path

CORPUS = [
    "You are a meticulous assistant for a food-review site.",
    "The pizza was warm and the crust was crisp.",
    "Question number one two three four five six seven eight nine ten.",
    "select id, name from users where age > 30 order by name;",
    "Unrelated text about the weather, trains, rivers and mountains.",
]


def build_tokenizer(out: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=["<unk>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS * 20, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="</s>"
    )
    # A chat template, so /v1/chat/completions works too.
    fast.chat_template = (
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant: {% endif %}"
    )
    fast.save_pretrained(out)


def build_model(out: Path, vocab_size: int) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=2048,
        bos_token_id=1,
        eos_token_id=2,
        torch_dtype="bfloat16",
    )
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(out, safe_serialization=True)


def build_adapter(base: Path, out: Path, seed: int) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    model = LlamaForCausalLM.from_pretrained(base)
    lora = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    peft_model = get_peft_model(model, lora)
    peft_model.save_pretrained(out)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: make_model.py OUT_DIR", file=sys.stderr)
        return 2
    root = Path(argv[1])
    base = root / "base"
    if (base / "config.json").exists() and (root / "lora-b" / "adapter_config.json").exists():
        print(f"model already built in {root}")
        return 0
    base.mkdir(parents=True, exist_ok=True)
    build_tokenizer(base)
    from transformers import AutoTokenizer

    vocab = len(AutoTokenizer.from_pretrained(base))
    build_model(base, vocab)
    build_adapter(base, root / "lora-a", seed=1)
    build_adapter(base, root / "lora-b", seed=2)
    print(f"built tiny llama (vocab {vocab}) and adapters lora-a, lora-b in {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
