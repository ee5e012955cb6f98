"""The rule every reply parser shares: a reasoning model's `<think>` section is not its answer.

Text up to the last `</think>` is ignored, and a reply whose `<think>` never closes (truncated
while thinking) has no answer at all, even if its thoughts rehearse one.
"""

from __future__ import annotations

_THINK_OPEN = "<think>"
_THINK_CLOSE = "</think>"


def strip_thinking(text: str) -> str:
    """Drop a `<think>` section, since rehearsed answers inside it are not the answer."""
    lowered = text.lower()
    close = lowered.rfind(_THINK_CLOSE)
    if close >= 0:
        return text[close + len(_THINK_CLOSE) :]
    opened = lowered.find(_THINK_OPEN)
    return text[:opened] if opened >= 0 else text
