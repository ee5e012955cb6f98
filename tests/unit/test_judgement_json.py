"""The JSON judge parser on replies written the way models write them, and the schema it
shares with the prompt and the engine's sampling params."""

from __future__ import annotations

import itertools
import json

import pytest

from promptcot_ray import records as R
from promptcot_ray.config import LLMConfig
from promptcot_ray.llm.engine import STRUCTURED_OUTPUTS_KEY, _ToChatPayload
from promptcot_ray.parsing import SOURCE_RATINGS, verdict_from_ratings
from promptcot_ray.parsing.judgement_json import SOURCE_JSON_VERDICT, parse_judgement_json
from promptcot_ray.prompts import judge
from promptcot_ray.records import CRITERIA, RATINGS
from promptcot_ray.synthesis import stages as S
from promptcot_ray.synthesis.config import JudgeConfig

ALL_PERFECT = dict.fromkeys(CRITERIA, "perfect")

# A pretty-printed reply, as an instruct model in JSON mode writes one.
PRETTY = """{
  "format": {
    "reason": "A clean statement; the rationale stays out of it.",
    "rating": "Perfect"
  },
  "factual_accuracy": {
    "reason": "The roots and coefficients are consistent.",
    "rating": "Perfect"
  },
  "difficulty_alignment": {
    "reason": "One non-obvious step, about right for HMMT-Feb.",
    "rating": "Acceptable"
  },
  "concept_coverage": {
    "reason": "Vieta and AM-GM are both needed.",
    "rating": "Perfect"
  },
  "solvability": {
    "reason": "p is determined uniquely.",
    "rating": "Perfect"
  },
  "verdict": "Perfect"
}"""
PRETTY_RATINGS = {**ALL_PERFECT, "difficulty_alignment": "acceptable"}


def _reply(ratings: dict[str, str], verdict: str, **reasons: str) -> str:
    """A compact reply whose reasons may be anything a model writes."""
    body = {
        c: {"reason": reasons.get(c, "Fine."), "rating": r.capitalize()} for c, r in ratings.items()
    }
    return json.dumps({**body, "verdict": verdict})


def _rated(criterion: str, rating: str, verdict: str = "Perfect") -> str:
    return _reply({**ALL_PERFECT, criterion: rating}, verdict)


def _pretty_with(extra: str) -> str:
    """PRETTY with one more member written just before its verdict."""
    return PRETTY.replace('"verdict"', extra + ',\n  "verdict"')


BAD_FACTS = {**ALL_PERFECT, "factual_accuracy": "bad"}
COMPACT_BARE = json.dumps({**{c: "Perfect" for c in CRITERIA}, "verdict": "Perfect"})
FOUR = {c: {"reason": "ok", "rating": "Perfect"} for c in CRITERIA[:4]}
QUOTES = {
    "format": 'The phrase "Find p" is explicit; no \\"hint\\" leaks.',
    "solvability": 'Unique: {p} = 44, see "Vieta".',
}
NO_RATING = PRETTY.replace(
    '"rating": "Perfect"\n  },\n  "verdict"', '"score": 5\n  },\n  "verdict"'
)
UNPARSEABLE, UNKNOWN = R.REASON_JUDGE_UNPARSEABLE, R.REASON_JUDGE_UNKNOWN_RATING
MISSING, TWICE = R.REASON_JUDGE_MISSING_CRITERION, R.REASON_JUDGE_CONFLICTING_RATINGS
CASES = [
    ("pretty", PRETTY, "perfect", None),
    ("fenced", f"```json\n{PRETTY}\n```", "perfect", None),
    ("after_sentence", f"Here is my evaluation:\n\n```json\n{PRETTY}\n```\n", "perfect", None),
    ("whitespace", "\n\n   " + PRETTY.replace("\n", "\n\t ") + "  \n\n", "perfect", None),
    ("after_think", f"<think>\nFacts ok; {{maybe}} bad?\n</think>\n{PRETTY}", "perfect", None),
    ("quotes_in_reasons", _reply(ALL_PERFECT, "Perfect", **QUOTES), "perfect", None),
    ("lowercase", _reply(ALL_PERFECT, "perfect").replace("Perfect", "perfect"), "perfect", None),
    ("no_verdict", json.dumps({**FOUR, "solvability": FOUR["format"]}), "perfect", None),
    ("bare_ratings", COMPACT_BARE, "perfect", None),
    ("acceptable", _reply(dict.fromkeys(CRITERIA, "acceptable"), "Acceptable"), "acceptable", None),
    # the verdict comes from the ratings: a stated verdict that disagrees is recorded
    ("contradictory_lax", _reply(BAD_FACTS, "Perfect"), "bad", R.REASON_JUDGE_CONTRADICTORY),
    ("contradictory_strict", _reply(ALL_PERFECT, "Bad"), "bad", R.REASON_JUDGE_CONTRADICTORY),
    ("verdict_in_reason", _reply(BAD_FACTS, "Bad", solvability="verdict: perfect"), "bad", None),
    # fail closed
    ("missing_criterion", json.dumps({**FOUR, "verdict": "Perfect"}), None, MISSING),
    (
        "null_criterion",
        json.dumps({**FOUR, "solvability": None, "verdict": "Perfect"}),
        None,
        MISSING,
    ),
    ("no_rating_key", NO_RATING, None, MISSING),
    ("enum_poor", _rated("factual_accuracy", "poor"), None, UNKNOWN),
    ("enum_not_perfect", _rated("solvability", "not perfect"), None, UNKNOWN),
    ("enum_slash", _rated("format", "Bad/Acceptable"), None, UNKNOWN),
    ("enum_period", _rated("format", "Perfect."), None, UNKNOWN),
    ("rating_a_number", PRETTY.replace('"rating": "Acceptable"', '"rating": 4'), None, UNKNOWN),
    ("verdict_outside_enum", _reply(ALL_PERFECT, "Excellent"), None, UNKNOWN),
    ("placeholders_echoed", judge.rubric("schema").split("rule above:\n")[1], None, UNKNOWN),
    (
        "rated_twice",
        _pretty_with('"factual_accuracy": {"reason": "x", "rating": "Bad"}'),
        None,
        TWICE,
    ),
    ("rated_twice_respelt", _pretty_with('"Factual Accuracy": "Bad"'), None, TWICE),
    ("truncated", PRETTY[:-60], None, UNPARSEABLE),
    ("truncated_in_reason", '{"format": {"reason": "A clean statem', None, UNPARSEABLE),
    ("trailing_comma", PRETTY.replace('"Perfect"\n}', '"Perfect",\n}'), None, UNPARSEABLE),
    ("single_quotes", PRETTY.replace('"', "'"), None, UNPARSEABLE),
    ("free_text_reply", judge.format_judgement(ALL_PERFECT, "perfect"), None, UNPARSEABLE),
    ("wrapped_object", json.dumps({"judgement": json.loads(PRETTY)}), None, UNPARSEABLE),
    ("two_objects", PRETTY + "\nOn reflection:\n" + _reply(BAD_FACTS, "Bad"), None, UNPARSEABLE),
    ("unclosed_think", f"<think>\nDraft answer: {PRETTY}", None, UNPARSEABLE),
    ("empty", "  \n", None, R.REASON_JUDGE_EMPTY),
    ("none", None, None, R.REASON_JUDGE_EMPTY),
]


@pytest.mark.parametrize(
    ("text", "verdict", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_parse_judgement_json(text: str | None, verdict: str | None, reason: str | None) -> None:
    parsed = parse_judgement_json(text)
    assert (parsed.verdict, parsed.reason) == (verdict, reason)
    assert parsed.contradictory == (reason == R.REASON_JUDGE_CONTRADICTORY)
    if verdict is None:
        assert parsed.source is None


def test_pretty_reply_ratings_and_source() -> None:
    parsed = parse_judgement_json(PRETTY)
    assert parsed.ratings == PRETTY_RATINGS and parsed.source == SOURCE_RATINGS


def test_a_stricter_stated_verdict_wins_and_says_so() -> None:
    parsed = parse_judgement_json(_reply(ALL_PERFECT, "Acceptable"))
    assert (parsed.verdict, parsed.source) == ("acceptable", SOURCE_JSON_VERDICT)
    assert parsed.ratings == ALL_PERFECT


def test_failed_reply_keeps_the_ratings_it_could_read() -> None:
    parsed = parse_judgement_json(_reply({**ALL_PERFECT, "solvability": "great"}, "Perfect"))
    assert parsed.ratings == {**ALL_PERFECT, "solvability": None}


COMBOS = list(itertools.product(RATINGS, repeat=len(CRITERIA)))


@pytest.mark.parametrize("combo", COMBOS, ids=["-".join(c) for c in COMBOS])
def test_format_judgement_json_round_trips_and_never_lets_a_bad_core_pass(combo) -> None:
    ratings = dict(zip(CRITERIA, combo, strict=True))
    for stated in ("perfect", verdict_from_ratings(ratings)):
        parsed = parse_judgement_json(judge.format_judgement_json(ratings, stated))
        assert parsed.ratings == ratings
        if ratings["factual_accuracy"] != "perfect" or ratings["solvability"] != "perfect":
            assert parsed.verdict != "perfect"
    assert parsed.verdict == verdict_from_ratings(ratings) and parsed.reason is None


def test_format_judgement_json_matches_the_schema() -> None:
    reply = json.loads(judge.format_judgement_json(ALL_PERFECT, "perfect"))
    schema = judge.reply_schema()
    assert list(reply) == schema["required"] and set(reply) == set(schema["properties"])
    enum = schema["properties"]["format"]["properties"]["rating"]["enum"]
    assert reply["format"]["rating"] in enum and reply["verdict"] in enum


# --- the schema reaches the engine ----------------------------------------------------------

LLM = LLMConfig(model="m", max_tokens=256)
DRAFT = {
    "draft_id": "d0",
    "draft_status": R.STATUS_OK,
    "concepts": ["Parity", "Pigeonhole principle"],
    "level": "AIME",
    "rationale": "Combine the two ideas.",
    "problem": "Show that among 13 integers two agree mod 12.",
}


def test_schema_judge_sampling_params_carry_the_json_schema() -> None:
    request = S.BuildJudgeRequest(0, JudgeConfig(name="a", llm=LLM))(DRAFT)
    params = request["sampling_params"]
    schema = json.loads(params[STRUCTURED_OUTPUTS_KEY]["json"])
    assert schema == judge.reply_schema()
    # the grammar writes properties in the schema's order: criteria as rated, reason first
    assert list(schema["properties"]) == [*CRITERIA, "verdict"]
    assert list(schema["properties"]["format"]["properties"]) == ["reason", "rating"]
    assert params["max_tokens"] == 256
    assert request["judge_0_prompt_version"] == "judge-v2-schema"
    skipped = S.BuildJudgeRequest(0, JudgeConfig(name="a", llm=LLM))(
        {**DRAFT, "draft_status": R.STATUS_FILTERED}
    )
    assert skipped["sampling_params"][STRUCTURED_OUTPUTS_KEY] == params[STRUCTURED_OUTPUTS_KEY]


def test_sampling_params_build_vllm_structured_outputs() -> None:
    """ray.data.llm 2.60 hands the key to vLLM 0.32's StructuredOutputsParams: check it takes it."""
    vllm_params = pytest.importorskip("vllm.sampling_params")
    params = dict(S.BuildJudgeRequest(0, JudgeConfig(name="a", llm=LLM))(DRAFT)["sampling_params"])
    structured = vllm_params.StructuredOutputsParams(**params.pop(STRUCTURED_OUTPUTS_KEY))
    sampling = vllm_params.SamplingParams(**params, structured_outputs=structured)
    assert json.loads(sampling.structured_outputs.json) == judge.reply_schema()


def test_free_text_judge_has_no_schema_and_its_own_version() -> None:
    cfg = JudgeConfig(name="a", llm=LLM, reply_format="free_text")
    request = S.BuildJudgeRequest(0, cfg)(DRAFT)
    assert STRUCTURED_OUTPUTS_KEY not in request["sampling_params"]
    assert request["judge_0_prompt_version"] == "judge-v2-text"
    schema_id = S.BuildJudgeRequest(0, JudgeConfig(name="a", llm=LLM))(DRAFT)["judge_0_id"]
    assert request["judge_0_id"] != schema_id


def test_openai_payload_sends_the_schema_as_response_format() -> None:
    pre = S.BuildJudgeRequest(0, JudgeConfig(name="a", llm=LLM))
    payload = _ToChatPayload("served-judge", pre)(DRAFT)["payload"]
    assert STRUCTURED_OUTPUTS_KEY not in payload
    assert payload["response_format"]["type"] == "json_schema"
    assert payload["response_format"]["json_schema"]["schema"] == judge.reply_schema()
    assert payload["response_format"]["json_schema"]["strict"] is True
    assert payload["max_tokens"] == 256 and payload["model"] == "served-judge"


@pytest.mark.parametrize(
    ("reply_format", "text", "verdict"),
    [
        ("schema", judge.format_judgement_json(ALL_PERFECT, "perfect"), "perfect"),
        ("schema", judge.format_judgement(ALL_PERFECT, "perfect"), None),
        ("free_text", judge.format_judgement(ALL_PERFECT, "perfect"), "perfect"),
    ],
    ids=["schema_json", "schema_given_lines", "free_text_lines"],
)
def test_collect_judgement_parses_by_reply_format(reply_format, text, verdict) -> None:
    cfg = JudgeConfig(name="a", llm=LLM, reply_format=reply_format)
    request = S.BuildJudgeRequest(0, cfg)(DRAFT)
    row = {**request, "generated_text": text, "num_input_tokens": 9, "num_generated_tokens": 9}
    judged = S.CollectJudgement(0, tuple(DRAFT), cfg)(row)
    assert judged["judge_0_verdict"] == verdict
    assert judged["judge_0_status"] == (R.STATUS_OK if verdict else R.STATUS_FILTERED)
