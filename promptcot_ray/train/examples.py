"""Prompt/completion rows -> token ids and labels, with loss on the completion only.

Pure functions (a tokenizer in, lists out) so the masking can be checked without Ray.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

IGNORE_INDEX = -100  # label value torch's cross-entropy skips: prompt and padding tokens

# Reasons a row is not trained on as-is (ledger keys of the train job).
REASON_MALFORMED = "malformed_row"  # prompt or completion missing, or bad JSON messages
REASON_EMPTY_COMPLETION = "empty_completion"
REASON_PROMPT_TOO_LONG = "prompt_too_long"  # the prompt alone fills max_length
REASON_TOO_LONG = "too_long"  # dropped (overflow: drop)
TRUNCATED = "truncated"  # kept, completion tail cut (overflow: truncate); counted, not rejected


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]
    truncated: bool = False

    @property
    def completion_tokens(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE_INDEX)


def prompt_messages(prompt: Any) -> list[dict[str, str]]:
    """A prompt cell as chat messages: JSON messages stay as they are, text is one user turn."""
    if isinstance(prompt, list):
        messages = prompt
    elif isinstance(prompt, str) and prompt.lstrip().startswith("["):
        try:
            messages = json.loads(prompt)
        except json.JSONDecodeError:  # text that starts with "[" ("[asy]", "[0, 1] is ...")
            return [{"role": "user", "content": prompt}]
        if not isinstance(messages, list) or not messages or not isinstance(messages[0], dict):
            return [{"role": "user", "content": prompt}]
    elif isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    else:
        raise ValueError(f"prompt must be text or chat messages, got {type(prompt).__name__}")
    if not messages or not all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
        for m in messages
    ):
        raise ValueError("prompt messages must be a non-empty list of {role, content}")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def completion_text(tokenizer: Any, messages: list[dict[str, str]], completion: str) -> tuple:
    """(prompt text, completion text as the chat template renders the assistant turn).

    The assistant turn is taken from the template so the model learns its end-of-turn
    marker. Some templates rewrite assistant content (DeepSeek-R1's drops everything up to
    </think>); when the rendered turn does not contain the completion verbatim, the
    completion plus the EOS token is used instead, so no reasoning is silently lost.
    """
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    full = tokenizer.apply_chat_template(
        [*messages, {"role": "assistant", "content": completion}], tokenize=False
    )
    if full.startswith(prompt) and completion in full[len(prompt) :]:
        return prompt, full[len(prompt) :]
    if prompt.rstrip().endswith("<think>") and completion.lstrip().startswith("<think>"):
        # the template opens the think block itself: do not teach a second opening tag
        completion = completion.lstrip()[len("<think>") :].lstrip("\n")
    return prompt, completion + (tokenizer.eos_token or "")


def encode(
    tokenizer: Any, prompt: Any, completion: Any, max_length: int, overflow: str, raw: bool = False
) -> Encoded | str:
    """Token ids and labels for one row, or the reason it cannot be trained on.

    `raw`: the prompt is plain text sent without a chat template (a generator row with
    prompt_format raw); the target is the completion plus EOS, where sampling stops.
    """
    if prompt is None or completion is None:
        return REASON_MALFORMED
    try:
        messages = None if raw else prompt_messages(prompt)
    except (ValueError, json.JSONDecodeError):
        return REASON_MALFORMED
    if not str(completion).strip():
        return REASON_EMPTY_COMPLETION
    if messages is None:
        prompt_text, target_text = str(prompt), str(completion) + (tokenizer.eos_token or "")
    else:
        prompt_text, target_text = completion_text(tokenizer, messages, str(completion))
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False).input_ids
    target_ids = tokenizer(target_text, add_special_tokens=False).input_ids
    if len(prompt_ids) >= max_length:
        return REASON_PROMPT_TOO_LONG
    truncated = len(prompt_ids) + len(target_ids) > max_length
    if truncated:
        if overflow == "drop":
            return REASON_TOO_LONG
        target_ids = target_ids[: max_length - len(prompt_ids)]
    return Encoded(
        input_ids=prompt_ids + target_ids,
        labels=[IGNORE_INDEX] * len(prompt_ids) + target_ids,
        truncated=truncated,
    )


def pack(examples: list[Encoded], max_length: int) -> list[dict[str, list[int]]]:
    """Greedily concatenate examples (in order) into sequences of at most max_length tokens.

    Each packed row carries position_ids that restart at 0 for every example: transformers
    reads the restarts to keep attention inside each example (a block-diagonal causal mask
    for sdpa/eager, varlen kernels for flash attention), so packing changes no example's loss.
    """
    rows: list[dict[str, list[int]]] = []
    ids: list[int] = []
    labels: list[int] = []
    positions: list[int] = []
    for ex in examples:
        if ids and len(ids) + len(ex.input_ids) > max_length:
            rows.append({"input_ids": ids, "labels": labels, "position_ids": positions})
            ids, labels, positions = [], [], []
        ids = ids + ex.input_ids
        labels = labels + ex.labels
        positions = positions + list(range(len(ex.input_ids)))
    if ids:
        rows.append({"input_ids": ids, "labels": labels, "position_ids": positions})
    return rows


def collate(rows: list[dict[str, list[int]]], pad_id: int) -> dict[str, list[list[int]]]:
    """Right-pad a micro-batch to its longest row; pads carry no loss and no attention.

    Packed rows (with position_ids) get no attention_mask: transformers builds the
    per-example mask from the position restarts, and the padded tail is one more
    (label-free) segment.
    """
    width = max(len(r["input_ids"]) for r in rows)
    out: dict[str, list[list[int]]] = {"input_ids": [], "labels": []}
    packed = "position_ids" in rows[0]
    out["position_ids" if packed else "attention_mask"] = []
    for r in rows:
        n = len(r["input_ids"])
        pad = width - n
        out["input_ids"].append(list(r["input_ids"]) + [pad_id] * pad)
        out["labels"].append(list(r["labels"]) + [IGNORE_INDEX] * pad)
        if packed:
            out["position_ids"].append(list(r["position_ids"]) + list(range(pad)))
        else:
            out["attention_mask"].append([1] * n + [0] * pad)
    return out
