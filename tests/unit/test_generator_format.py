"""The generator's prompt formats and where it stops: chat (end-of-turn token from the
template) or raw (a plain prompt, no template, stopping at EOS), in synthesis and training."""

from __future__ import annotations

import json

import pytest

from promptcot_ray.llm.stops import NoChatTemplate, end_of_turn_ids, generator_stop_ids
from promptcot_ray.parsing import parse_draft
from promptcot_ray.prompts import generator as gp
from promptcot_ray.rationales.config import RationalesConfig
from promptcot_ray.rationales.scoring import scoring_tokens
from promptcot_ray.rationales.stages import CollectRationale
from promptcot_ray.synthesis.config import GeneratorConfig, SynthesizeConfig
from promptcot_ray.synthesis.stages import BuildGenerationRequest
from promptcot_ray.train.examples import IGNORE_INDEX, encode

CONCEPTS = ["Vieta's formulas", "AM-GM inequality"]
# Llama-3.1's shape: a turn ends with <|eot_id|>, the vocabulary's EOS is <|end_of_text|>.
LLAMA31_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}"
    "<|end_header_id|>\n\n{{ m['content'] }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"]
HEADERS = ["<|start_header_id|>", "<|end_header_id|>"]


@pytest.fixture(scope="module")
def llama_like():
    """A BPE tokenizer built offline whose end-of-turn token differs from its EOS."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<unk>", *SPECIALS, *HEADERS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([gp.RAW_TEMPLATE, gp.USER_TEMPLATE, gp.SYSTEM], trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|begin_of_text|>",
        eos_token="<|end_of_text|>",
        unk_token="<unk>",
        additional_special_tokens=["<|eot_id|>", *HEADERS],
    )
    fast.chat_template = LLAMA31_TEMPLATE
    return fast


def test_chat_generator_stops_at_end_of_turn_not_only_eos(llama_like):
    eot = llama_like.convert_tokens_to_ids("<|eot_id|>")
    assert eot != llama_like.eos_token_id
    assert end_of_turn_ids(llama_like) == [eot, llama_like.eos_token_id]
    request = BuildGenerationRequest(
        GeneratorConfig(model="m", device="cpu"), "chat", generator_stop_ids(llama_like, "chat")
    )({"combination_id": "c1", "concepts": CONCEPTS, "level": "AIME"})
    assert request["sampling_params"]["stop_token_ids"][0] == eot
    assert request["messages"] == gp.build_generator_messages(CONCEPTS, "AIME")


def test_tiny_model_template_ends_turns_with_its_eos():
    from promptcot_ray.llm.tiny_model import build_tokenizer

    tok = build_tokenizer(512)
    assert end_of_turn_ids(tok) == [tok.eos_token_id]


def test_base_model_without_template_gets_a_clear_error_or_raw(llama_like):
    base = llama_like.__class__(tokenizer_object=llama_like.backend_tokenizer)
    base.eos_token = "<|end_of_text|>"
    base.chat_template = None
    with pytest.raises(NoChatTemplate, match="prompt_format=raw"):
        generator_stop_ids(base, "chat", "meta-llama/Llama-3.1-8B")
    assert generator_stop_ids(base, "raw") == [base.eos_token_id]


def test_raw_format_sends_a_plain_prompt_with_its_own_version():
    llm = GeneratorConfig(model="m", device="cpu", prompt_format="raw")
    row = {"combination_id": "c1", "concepts": CONCEPTS, "level": "HMMT-Feb"}
    raw = BuildGenerationRequest(llm, "raw", [2])(row)
    chat = BuildGenerationRequest(llm, "chat", [2])(row)
    assert "messages" not in raw and isinstance(raw["prompt"], str)
    assert "1. Vieta's formulas" in raw["prompt"] and "HMMT-Feb" in raw["prompt"]
    assert raw["generator_prompt_version"] == gp.RAW_VERSION != chat["generator_prompt_version"]
    assert raw["draft_id"] != chat["draft_id"]  # lineage: the format is part of the id
    # the reply the trained generator writes after the plain prompt parses as a draft
    reply = gp.format_completion("Combine the two.", "Find $p$.")
    assert parse_draft(reply).reason is None


def test_generator_defaults_follow_the_paper():
    assert GeneratorConfig(model="m").top_p == 1.0
    assert GeneratorConfig(model="m").prompt_format == "chat"
    with pytest.raises(ValueError, match="prompt_format='raw' needs engine='vllm'"):
        GeneratorConfig(model="m", engine="openai", base_url="http://h/v1", prompt_format="raw")
    cfg = SynthesizeConfig(generator={"model": "g"}, judges=[{"name": "a", "llm": {"model": "j"}}])
    assert cfg.generator.top_p == 1.0 and cfg.judges[0].llm.top_p == 0.95


def test_raw_sft_rows_train_on_the_prompt_synthesis_sends(llama_like):
    row = {
        "problem": "Find $p$.",
        "concepts": CONCEPTS,
        "level": "AMC8",
        "generated_text": "<!-- BEGIN RATIONALE -->\nCombine the two.\n<!-- END RATIONALE -->",
    }
    out = CollectRationale(0.8, "raw")(row)
    assert out["prompt"] == gp.build_generator_raw_prompt(CONCEPTS, "AMC8")
    assert (out["prompt_format"], out["prompt_version_generator"]) == ("raw", gp.RAW_VERSION)
    chat = CollectRationale(0.8)(row)
    assert json.loads(chat["prompt"]) == gp.build_generator_messages(CONCEPTS, "AMC8")
    encoded = encode(llama_like, out["prompt"], out["completion"], 4096, "drop", raw=True)
    prompt_ids = llama_like(out["prompt"], add_special_tokens=False).input_ids
    assert encoded.input_ids[: len(prompt_ids)] == prompt_ids  # no template around it
    assert encoded.labels[: len(prompt_ids)] == [IGNORE_INDEX] * len(prompt_ids)
    assert encoded.input_ids[-1] == llama_like.eos_token_id  # where raw sampling stops
    eot = llama_like.convert_tokens_to_ids("<|eot_id|>")
    assert eot not in encoded.input_ids
    as_chat = encode(llama_like, chat["prompt"], chat["completion"], 4096, "drop")
    assert eot in as_chat.labels  # chat rows learn the end-of-turn token instead


def test_raw_scoring_uses_the_raw_prompt(llama_like):
    ids, start, cut = scoring_tokens(llama_like, CONCEPTS, "AIME", "Why.", "What.", "raw")
    text = llama_like.decode(ids[:start])
    assert text == gp.build_generator_raw_prompt(CONCEPTS, "AIME")
    assert 0 < start < cut < len(ids)


def test_rationales_config_names_the_generator_format():
    cfg = RationalesConfig(writer={"model": "w"}, generator_prompt_format="raw")
    assert cfg.generator_prompt_format == "raw"


def test_stop_ids_need_no_tokenizer_off_vllm():
    from promptcot_ray.llm.stops import stop_ids_for

    hosted = GeneratorConfig(model="no/such-model", engine="openai", base_url="http://h/v1")
    assert stop_ids_for(hosted, "chat", None) == []


def test_a_plain_llm_config_becomes_a_generator_with_generator_defaults():
    from promptcot_ray.config import LLMConfig

    cfg = SynthesizeConfig(
        generator=LLMConfig(model="g", temperature=0.7),
        judges=[{"name": "a", "llm": {"model": "j"}}],
    )
    assert isinstance(cfg.generator, GeneratorConfig)
    assert (cfg.generator.temperature, cfg.generator.top_p) == (0.7, 1.0)
