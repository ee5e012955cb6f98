"""Where the generator must stop: its chat template's end-of-turn token, or EOS (raw format).

vLLM stops at the tokenizer's EOS by default, and that is not always where an assistant turn
ends: Llama-3.1-Instruct ends a turn with <|eot_id|> while its EOS is <|end_of_text|>, so a
generator trained on the chat template would run past its turn into a new header. The
end-of-turn token is read off the template itself (what it renders right after an assistant
message), so any template works without a per-model table.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from promptcot_ray.config import ConfigError

_SENTINEL = "PROMPTCOT_END_OF_TURN_PROBE"
# Tokenizer files a stop-token lookup needs: enough to copy an s3:// model's tokenizer alone.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "chat_template.json",
    "generation_config.json",
    "config.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
)


class NoChatTemplate(ConfigError):
    """prompt_format 'chat' on a model whose tokenizer has no chat template (a base model)."""


def end_of_turn_ids(tokenizer: Any, model: str = "the generator") -> list[int]:
    """Special-token ids the chat template writes after an assistant message, then EOS.

    Raises NoChatTemplate for a tokenizer without a template: a base model has no turn to
    end, so 'chat' cannot work for it; 'raw' is the format for it.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise NoChatTemplate(
            f"generator.model={model} has no chat template (a base model?): set "
            "generator.prompt_format=raw (and rationales generator_prompt_format=raw)"
        )
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "x"}, {"role": "assistant", "content": _SENTINEL}],
        tokenize=False,
    )
    tail = rendered.split(_SENTINEL, 1)[1] if _SENTINEL in rendered else ""
    special = set(tokenizer.all_special_ids) | set(getattr(tokenizer, "added_tokens_decoder", {}))
    ids = [i for i in tokenizer(tail, add_special_tokens=False).input_ids if i in special]
    eos = tokenizer.eos_token_id
    return list(dict.fromkeys([*ids[:1], *([eos] if eos is not None else [])]))


def generator_stop_ids(tokenizer: Any, prompt_format: str, model: str = "the generator") -> list:
    """Stop token ids for the generator: end-of-turn (chat) or EOS (raw, as trained)."""
    if prompt_format == "raw":
        return [] if tokenizer.eos_token_id is None else [tokenizer.eos_token_id]
    return end_of_turn_ids(tokenizer, model)


@lru_cache(maxsize=4)
def load_tokenizer(location: str) -> Any:
    """The tokenizer of a local model folder or hub name (cached per process)."""
    from transformers import AutoTokenizer

    from promptcot_ray.llm.rehearsal_config import REHEARSAL_MODEL

    if location == REHEARSAL_MODEL:  # the rehearsal engine counts with the tiny tokenizer
        from promptcot_ray.llm.tiny_model import build_tokenizer

        return build_tokenizer()
    return AutoTokenizer.from_pretrained(location)


def tokenizer_location(uri: str, storage: Any) -> str:
    """A local folder with just the tokenizer files of an s3:// model (else `uri` itself).

    The stop tokens are looked up once on the driver; copying the weights of an 8B model
    there for that would cost minutes and 16 GB.
    """
    if not uri.startswith(("s3://", "s3a://")):
        return uri
    import tempfile

    from promptcot_ray.storage import RunDir

    src = RunDir(uri, storage)
    target = tempfile.mkdtemp(prefix="promptcot-tokenizer-")
    for name in TOKENIZER_FILES:
        if src.exists(name):
            with open(f"{target}/{name}", "wb") as out:
                out.write(src.read_bytes(name))
    return target


def stop_ids_for(llm: Any, prompt_format: str, storage: Any) -> list[int]:
    """The generator's stop ids, looked up on the driver before the pipeline is built.

    An OpenAI-compatible endpoint applies its own template and stops its own turn: none.
    """
    if llm.engine in ("openai", "rehearsal"):  # rehearsal: no model, so no tokenizer
        return []
    location = tokenizer_location(llm.source, storage)
    return generator_stop_ids(load_tokenizer(location), prompt_format, llm.model)
