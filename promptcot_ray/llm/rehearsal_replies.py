"""The rehearsal engine's replies, one builder per reply kind, in the formats the parsers read.

Each builder takes the preprocessed row (what a real engine would be sent, plus the columns
the job carries) and returns (text, tokens_out); tokens_out equal to max_tokens means "cut
off". Every choice is drawn from a hash of the row's id (`unit`), never from a shared RNG,
so the same row gets the same reply on any worker, in any order, after any resume. Replies
are written with the project's own format functions, so they parse exactly as a real
model's well-formed reply would; their content is meaningless.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any

from promptcot_ray.llm.rehearsal_config import RehearsalConfig
from promptcot_ray.parsing import verdict_from_ratings
from promptcot_ray.prompts import generator as generator_prompt
from promptcot_ray.prompts import judge as judge_prompt
from promptcot_ray.records import CRITERIA, LEVELS

WORDS = (
    "integer", "prime", "triangle", "circle", "polynomial", "sequence", "sum", "product",
    "divisor", "remainder", "chord", "tangent", "root", "digit", "graph", "vertex", "angle",
    "area", "ratio", "permutation", "subset", "function", "matrix", "lattice", "probability",
)  # fmt: skip
REASONING = (
    "Restate the question, try small cases, and look for the invariant behind them.",
    "Set up the equations, eliminate one variable, and check the candidate at the end.",
    "Count the configurations by cases, then subtract the ones counted twice.",
)


def unit(*parts: Any) -> float:
    """A number in [0, 1) fixed by `parts` (a row id and a purpose): the only randomness."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def pick(options: tuple | list, *parts: Any) -> Any:
    return options[int(unit(*parts) * len(options))]


def tokens(cfg: RehearsalConfig, typical: int, max_tokens: int, *parts: Any) -> int:
    """A reply length near `typical`, always below `max_tokens` (reaching it means cut off)."""
    spread = 1 + cfg.token_jitter * (2 * unit("tokens", *parts) - 1)
    return max(1, min(int(typical * spread), max_tokens - 1))


@lru_cache(maxsize=1)
def _concept_lists() -> tuple[tuple[str, ...], ...]:
    from promptcot_ray.concepts.pool import default_concept_lists_path, load_concept_lists

    return tuple(tuple(c) for c in load_concept_lists(default_concept_lists_path()))


def concept_reply(row_id: str, count: int) -> str:
    """A numbered concept list drawn from the shipped lists, then a Level line."""
    lists = _concept_lists()
    concepts: list[str] = []
    for i in range(len(lists)):  # walk lists from a hashed start until `count` distinct
        for concept in lists[(int(unit("concepts", row_id) * len(lists)) + i) % len(lists)]:
            if concept not in concepts:
                concepts.append(concept)
        if len(concepts) >= count:
            break
    lines = [f"{i}. {c}" for i, c in enumerate(concepts[:count], start=1)]
    return "\n".join([*lines, f"Level: {pick(LEVELS, 'level', row_id)}"])


def problem_text(row_id: str, concepts: list[str], level: str) -> str:
    """A distinct problem statement per row (distinct enough that dedup keeps most)."""
    words = [pick(WORDS, "word", row_id, i) for i in range(8)]
    n = 2 + int(unit("n", row_id) * 9973)
    return (
        f"Let N = {n}. Combining {', '.join(concepts[:3]) or 'the given ideas'}, consider "
        f"the {words[0]} and {words[1]} of every {words[2]} below N whose {words[3]} is a "
        f"{words[4]}. Find the {words[5]} of all such {words[6]}s modulo {n % 97 + 3} "
        f"({level} level, {words[7]} form)."
    )


def rationale_text(row_id: str, concepts: list[str]) -> str:
    first = concepts[0] if concepts else "the first concept"
    return (
        f"Start from {first}, ask which quantity it controls, and pin that quantity down "
        f"with the other concepts; hide the key step behind a {pick(WORDS, 'r', row_id)}."
    )


def rationale_reply(row_id: str, concepts: list[str]) -> str:
    begin, end = generator_prompt.RATIONALE_BEGIN, generator_prompt.RATIONALE_END
    return f"{begin}\n{rationale_text(row_id, concepts)}\n{end}"


def draft_reply(cfg: RehearsalConfig, row: dict, row_id: str, max_tokens: int) -> tuple[str, int]:
    """A tagged rationale + problem, or (at draft_unparseable_share) one missing its problem."""
    concepts = [str(c) for c in row.get("concepts") or []]
    rationale = rationale_text(row_id, concepts)
    out = tokens(cfg, cfg.draft_tokens, max_tokens, row_id)
    draw = unit("draft", row_id)
    if draw < cfg.draft_unparseable_share:
        begin, end = generator_prompt.RATIONALE_BEGIN, generator_prompt.RATIONALE_END
        cut = draw < cfg.draft_unparseable_share / 2  # ran out of tokens inside the rationale
        return f"{begin}\n{rationale}" + ("" if cut else f"\n{end}"), max_tokens if cut else out
    problem = problem_text(row_id, concepts, str(row.get("level") or LEVELS[0]))
    return generator_prompt.format_completion(rationale, problem), out


def judge_outcome(cfg: RehearsalConfig, row_id: str) -> str:
    """'perfect', 'acceptable', 'bad' or 'unparseable', at the configured shares."""
    draw, edge = unit("judge", row_id), 0.0
    for outcome, share in (
        ("perfect", cfg.judge_perfect_share),
        ("acceptable", cfg.judge_acceptable_share),
        ("bad", cfg.judge_bad_share),
    ):
        edge += share
        if draw < edge:
            return outcome
    return "unparseable"


def judge_ratings(outcome: str, row_id: str) -> dict[str, str]:
    """Ratings whose verdict (by the prompt's rule) is `outcome`."""
    ratings = dict.fromkeys(CRITERIA, "perfect")
    if outcome != "perfect":  # factual accuracy alone decides between acceptable and bad
        ratings[CRITERIA[int(unit("criterion", row_id) * len(CRITERIA))]] = outcome
        ratings["factual_accuracy"] = outcome
    return ratings


def judge_reply(cfg: RehearsalConfig, row_id: str, json_mode: bool) -> str:
    """The rating lines, or the JSON object when the request asks for structured output;
    at judge_unparseable_share free text (or, in JSON mode, an object cut off)."""
    outcome = judge_outcome(cfg, row_id)
    if outcome == "unparseable":
        if json_mode:  # constrained decoding still stops at max_tokens mid-object
            return '{"' + CRITERIA[0] + '": {"reason": "The statement is'
        return "This problem looks interesting, but I would need more context to rate it."
    ratings = judge_ratings(outcome, row_id)
    verdict = verdict_from_ratings(ratings)
    if json_mode:
        return judge_prompt.format_judgement_json(ratings, verdict)
    return judge_prompt.format_judgement(ratings, verdict)


def solution_reply(
    cfg: RehearsalConfig, row: dict, row_id: str, max_tokens: int
) -> tuple[str, int]:
    """A think block and a boxed answer; teachers agree per problem, evaluations are right
    at eval_correct_share; at cutoff_share an unclosed think block at max_tokens."""
    problem_id = str(row.get("problem_id") or row_id)
    reasoning = pick(REASONING, "reasoning", row_id)
    if unit("cutoff", row_id) < cfg.cutoff_share:
        return f"<think>\n{reasoning}", max_tokens
    reference = row.get("reference")
    if reference is not None:  # an evaluation item: right or wrong at the configured share
        right = unit("correct", row_id) < cfg.eval_correct_share
        answer = str(reference) if right else f"{reference}1"
    elif unit("agree", problem_id) < cfg.teacher_agreement_share:
        answer = str(int(unit("answer", problem_id) * 1000))
    else:
        answer = str(int(unit("answer", row_id) * 1000))
    text = f"<think>\n{reasoning}\n</think>\n\nThe answer is $\\boxed{{{answer}}}$."
    return text, tokens(cfg, cfg.solution_tokens, max_tokens, row_id)
