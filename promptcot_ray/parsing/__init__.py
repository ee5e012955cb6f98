"""Parse model replies (drafts, rationales, judgements, concept lists) into values or reasons.

Every parser is pure and total: it takes the raw reply (or None when the engine gave none)
and returns a frozen dataclass holding the parsed value(s) or a stable reason code from
`records`, so a malformed reply becomes a counted rejection, never an exception. Only the
standard library is used, so these functions run in any Ray worker and in unit tests.
"""

from promptcot_ray.parsing.concepts import ConceptParse, match_level, parse_concepts
from promptcot_ray.parsing.drafts import DraftParse, RationaleParse, parse_draft, parse_rationale
from promptcot_ray.parsing.judgements import (
    SOURCE_RATINGS,
    SOURCE_VERDICT_LINE,
    JudgeParse,
    parse_judgement,
    reconcile_verdict,
    verdict_from_ratings,
)
from promptcot_ray.parsing.thinking import strip_thinking

__all__ = [
    "SOURCE_RATINGS",
    "SOURCE_VERDICT_LINE",
    "ConceptParse",
    "DraftParse",
    "JudgeParse",
    "RationaleParse",
    "match_level",
    "parse_concepts",
    "parse_draft",
    "parse_judgement",
    "parse_rationale",
    "reconcile_verdict",
    "strip_thinking",
    "verdict_from_ratings",
]
