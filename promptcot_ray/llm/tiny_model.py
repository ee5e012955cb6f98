"""Build a tiny random Llama with a real BPE tokenizer and chat template, fully offline.

Model hubs are unreachable on CI and laptops without network, yet the real loading code
(vLLM, transformers, DeepSpeed) must run end to end. A 2-layer Llama with a byte-level BPE
trained here on the project's own text is loaded by exactly the same code as an 8B model.
Its replies are gibberish: drafts from it are expected to be rejected.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from promptcot_ray.errors import UserError

logger = logging.getLogger(__name__)


class TinyModelError(UserError):
    """The tiny model cannot be written where asked (the path is a file, or not writable)."""


SPECIAL_TOKENS = {
    "bos": "<|begin|>",
    "eos": "<|end|>",
    "pad": "<|pad|>",
    "unk": "<|unk|>",
}
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")
# Role header, content, end token: the same shape as common instruct templates.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


def _training_corpus() -> list[str]:
    """Text the tokenizer learns from: the project's concept lists, tags and prompt words."""
    from importlib.resources import files

    corpus: list[str] = []
    data = files("promptcot_ray") / "data" / "concept_lists.jsonl"
    if data.is_file():
        for line in data.read_text().splitlines():
            if line.strip():
                corpus.append(" ".join(json.loads(line).get("concepts", [])))
    corpus += [
        "<!-- BEGIN RATIONALE --> <!-- END RATIONALE -->",
        "<!-- BEGIN PROBLEM --> <!-- END PROBLEM -->",
        "0123456789 + - * / = ( ) [ ] { } \\frac \\sqrt \\boxed <think> </think>",
    ]
    # The prompts and replies the project sends and expects, so they tokenize compactly.
    from promptcot_ray.llm.format_tuning import format_examples

    for messages, reply in format_examples(16):
        corpus += [m["content"] for m in messages] + [reply]
    return corpus


def build_tokenizer(vocab_size: int = 2048):  # -> PreTrainedTokenizerFast
    """Train a byte-level BPE (any text encodes, nothing maps to unk) with a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=SPECIAL_TOKENS["unk"]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[*SPECIAL_TOKENS.values(), *ROLE_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_training_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=SPECIAL_TOKENS["bos"],
        eos_token=SPECIAL_TOKENS["eos"],
        pad_token=SPECIAL_TOKENS["pad"],
        unk_token=SPECIAL_TOKENS["unk"],
        additional_special_tokens=list(ROLE_TOKENS),
        padding_side="left",
        model_max_length=4096,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_model(
    out_dir: str | Path,
    hidden_size: int = 128,
    num_layers: int = 2,
    vocab_size: int = 2048,
    max_position_embeddings: int = 4096,
    seed: int = 0,
) -> Path:
    """Write a random tiny Llama + tokenizer to `out_dir` (safetensors, fp32); return it."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise TinyModelError(f"{out} is a file; give a folder to write the model into")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a parent is a file, or no permission
        raise TinyModelError(f"cannot create {out}: {exc.strerror or exc}") from None
    tokenizer = build_tokenizer(vocab_size)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        torch_dtype="float32",
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    logger.info("tiny model written to %s (%d parameters)", out, model.num_parameters())
    return out
