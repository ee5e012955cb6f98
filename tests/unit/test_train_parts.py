"""Train job parts without Ray: masking, packing, DeepSpeed config, LR schedule, inputs."""

from __future__ import annotations

import json

import pytest

from promptcot_ray.config import ConfigError, LLMConfig, load_config
from promptcot_ray.llm.format_tuning import generator_sft_rows
from promptcot_ray.model_paths import resolve_model, with_run_models
from promptcot_ray.sources import read_rows
from promptcot_ray.storage import RunDir
from promptcot_ray.synthesis.config import SynthesizeConfig
from promptcot_ray.train.config import TrainConfig
from promptcot_ray.train.deepspeed_config import (
    deepspeed_config,
    lr_multiplier,
    total_optimizer_steps,
)
from promptcot_ray.train.examples import (
    IGNORE_INDEX,
    REASON_EMPTY_COMPLETION,
    REASON_MALFORMED,
    REASON_PROMPT_TOO_LONG,
    REASON_TOO_LONG,
    Encoded,
    collate,
    encode,
    pack,
    prompt_messages,
)


@pytest.fixture(scope="module")
def tokenizer(tiny_model_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_path)


def _cfg(**kw) -> TrainConfig:
    base = {"base_model": "m", "use_gpu": False, "precision": "fp32"}
    return TrainConfig.model_validate({**base, **kw})


def test_prompt_tokens_carry_no_loss(tokenizer):
    row = generator_sft_rows(1)[0]
    enc = encode(tokenizer, row["prompt"], row["completion"], 4096, "truncate")
    assert isinstance(enc, Encoded)
    prompt_text = tokenizer.apply_chat_template(
        json.loads(row["prompt"]), add_generation_prompt=True, tokenize=False
    )
    n_prompt = len(tokenizer(prompt_text, add_special_tokens=False).input_ids)
    assert enc.labels[:n_prompt] == [IGNORE_INDEX] * n_prompt
    assert enc.labels[n_prompt:] == enc.input_ids[n_prompt:]
    learned = tokenizer.decode(enc.labels[n_prompt:])
    assert row["completion"].split()[0] in learned  # the completion is what is learned
    assert tokenizer.eos_token in learned or learned.rstrip().endswith(
        row["completion"].split()[-1]
    )


def test_plain_text_prompt_is_one_user_turn():
    assert prompt_messages("What is 1+1?") == [{"role": "user", "content": "What is 1+1?"}]
    for text in ("[b]Problem 3.[/b] Find x.", "[0, 1] is an interval", "[1, 2]"):
        assert prompt_messages(text) == [{"role": "user", "content": text}]
    with pytest.raises(ValueError):
        prompt_messages('[{"role": "user"}]')


def test_overflow_truncates_or_drops_and_bad_rows_get_reasons(tokenizer):
    row = generator_sft_rows(1)[0]
    full = encode(tokenizer, row["prompt"], row["completion"], 4096, "truncate")
    n_prompt = full.labels.count(IGNORE_INDEX)
    limit = n_prompt + 5
    cut = encode(tokenizer, row["prompt"], row["completion"], limit, "truncate")
    assert cut.truncated and len(cut.input_ids) == limit and cut.completion_tokens == 5
    assert encode(tokenizer, row["prompt"], row["completion"], limit, "drop") == REASON_TOO_LONG
    assert encode(tokenizer, row["prompt"], row["completion"], n_prompt, "drop") == (
        REASON_PROMPT_TOO_LONG
    )
    assert encode(tokenizer, None, "x", 100, "drop") == REASON_MALFORMED
    assert encode(tokenizer, '[{"role": "user"}]', "x", 100, "drop") == REASON_MALFORMED
    assert isinstance(encode(tokenizer, "[asy] draw a circle", "x", 100, "drop"), Encoded)
    assert encode(tokenizer, "q", "  ", 100, "drop") == REASON_EMPTY_COMPLETION


def test_packing_keeps_every_token_and_restarts_positions():
    examples = [
        Encoded([i] * n, [IGNORE_INDEX] + [i] * (n - 1)) for i, n in ((1, 3), (2, 4), (3, 5))
    ]
    rows = pack(examples, max_length=8)
    assert [r["input_ids"] for r in rows] == [[1, 1, 1, 2, 2, 2, 2], [3, 3, 3, 3, 3]]
    assert rows[0]["position_ids"] == [0, 1, 2, 0, 1, 2, 3]
    assert rows[0]["labels"] == [IGNORE_INDEX, 1, 1, IGNORE_INDEX, 2, 2, 2]


def test_collate_pads_without_loss_or_attention():
    batch = collate(
        [{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}, {"input_ids": [8], "labels": [8]}], 0
    )
    assert batch["input_ids"] == [[5, 6, 7], [8, 0, 0]]
    assert batch["labels"][1] == [8, IGNORE_INDEX, IGNORE_INDEX]
    assert batch["attention_mask"] == [[1, 1, 1], [1, 0, 0]]
    packed = collate(
        [
            {"input_ids": [1, 2], "labels": [1, 2], "position_ids": [0, 0]},
            {"input_ids": [3], "labels": [3], "position_ids": [0]},
        ],
        0,
    )
    assert "attention_mask" not in packed and packed["position_ids"][1] == [0, 0]


def test_packed_rows_have_the_same_loss_as_separate_rows(tiny_model_path, tokenizer):
    """Attention must not cross packed examples: per-token losses match unpacked ones."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_path, dtype=torch.float32).eval()
    rows = generator_sft_rows(2, seed=3)
    examples = [encode(tokenizer, r["prompt"], r["completion"], 4096, "drop") for r in rows]

    def token_losses(batch):
        t = {k: torch.tensor(v) for k, v in batch.items()}
        labels = t.pop("labels")
        logits = model(**t, use_cache=False).logits[:, :-1]  # as in training
        loss = torch.nn.functional.cross_entropy(
            logits.transpose(1, 2), labels[:, 1:], reduction="none", ignore_index=IGNORE_INDEX
        )
        return loss[labels[:, 1:] != IGNORE_INDEX]

    with torch.no_grad():
        packed = token_losses(collate(pack(examples, 8192), tokenizer.pad_token_id))
        separate = torch.cat(
            [
                token_losses(collate([{"input_ids": e.input_ids, "labels": e.labels}], 0))
                for e in examples
            ]
        )
    assert packed.shape == separate.shape
    assert torch.allclose(packed, separate, atol=1e-4)


def test_deepspeed_config_follows_the_job():
    ds = deepspeed_config(_cfg(num_workers=4, micro_batch_size=2, gradient_accumulation_steps=8))
    assert ds["train_batch_size"] == 64 and ds["zero_optimization"]["stage"] == 2
    assert ds["bf16"]["enabled"] is False and "optimizer" not in ds
    gpu = _cfg(use_gpu=True, precision="bf16", deepspeed={"zero_stage": 3, "offload_params": True})
    ds3 = deepspeed_config(gpu)
    assert ds3["bf16"]["enabled"] is True
    assert ds3["zero_optimization"]["offload_param"]["device"] == "cpu"
    assert ds3["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True
    offload = deepspeed_config(_cfg(use_gpu=True, deepspeed={"offload_optimizer": True}))
    assert offload["optimizer"]["type"] == "AdamW"  # DeepSpeed's CPU Adam does the step
    extra = deepspeed_config(_cfg(deepspeed={"extra": {"zero_optimization": {"stage": 3}}}))
    assert (
        extra["zero_optimization"]["stage"] == 3
        and "contiguous_gradients" in extra["zero_optimization"]
    )


def test_bad_train_configs_name_the_key():
    with pytest.raises(ValueError, match="bf16"):
        TrainConfig.model_validate({"base_model": "m", "use_gpu": False})
    with pytest.raises(ValueError, match="offload_params"):
        _cfg(use_gpu=True, precision="bf16", deepspeed={"offload_params": True})
    with pytest.raises(ValueError, match="name"):
        _cfg(name="../escape")
    with pytest.raises(ValueError, match="flash"):
        _cfg(packing=True, micro_batch_size=2, attn_implementation="flash_attention_2")


def test_changed_settings_do_not_resume_old_checkpoints(tmp_path):
    from promptcot_ray.train.job import TrainError, _check_checkpoints_match

    run = RunDir(str(tmp_path))
    cfg = _cfg(name="g")
    _check_checkpoints_match(cfg, run)
    run.write_text("models/g/checkpoints/checkpoint_1/latest", "ds")
    _check_checkpoints_match(cfg.model_copy(update={"max_failures": 9}), run)  # resume-safe
    with pytest.raises(TrainError, match="other settings"):
        _check_checkpoints_match(cfg.model_copy(update={"learning_rate": 1.0}), run)


def test_lr_schedule_warms_up_then_decays():
    assert lr_multiplier(0, 10, 100, "cosine") == pytest.approx(0.1)
    assert lr_multiplier(9, 10, 100, "cosine") == pytest.approx(1.0)
    assert lr_multiplier(10, 10, 100, "cosine") == pytest.approx(1.0)
    assert lr_multiplier(55, 10, 100, "cosine") == pytest.approx(0.5)
    assert lr_multiplier(99, 10, 100, "linear") == pytest.approx(1 / 90)
    assert lr_multiplier(50, 10, 100, "constant") == 1.0


def test_total_steps_count_accumulation_epochs_and_cap():
    cfg = _cfg(micro_batch_size=2, gradient_accumulation_steps=4, epochs=2)
    # 9 micro-batches an epoch, 18 in all; DeepSpeed carries partial accumulations over
    assert total_optimizer_steps(cfg, rows_per_worker=17) == 4
    assert total_optimizer_steps(cfg.model_copy(update={"max_steps": 3}), 17) == 3


def test_read_rows_from_files_folders_and_the_run_dir(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"prompt": "p", "completion": "c"}\n\n')
    run = RunDir(str(tmp_path / "run"))
    run.write_text("sft/x.jsonl", '{"prompt": "q", "completion": "d"}\n')
    assert read_rows(str(tmp_path / "a.jsonl"), _storage(), run, "k").num_rows == 1
    assert read_rows("sft", _storage(), run, "k").column("prompt").to_pylist() == ["q"]
    run.write_json("sft/_SUCCESS.json", {"rows": 1})  # markers are not rows
    assert read_rows("sft", _storage(), run, "k").num_rows == 1
    (tmp_path / "bad.jsonl").write_text('{"prompt": "p"}\n{oops\n')
    with pytest.raises(ConfigError, match="line 2"):
        read_rows(str(tmp_path / "bad.jsonl"), _storage(), run, "data.source")
    with pytest.raises(ConfigError, match="nothing at"):
        read_rows("missing", _storage(), run, "data.source")


def test_a_folder_of_parquet_and_jsonl_files_is_read_whole_and_a_bad_line_is_named(tmp_path):
    import pyarrow as pa

    run = RunDir(str(tmp_path / "run"))
    for i in range(12):  # Parquet files read as one dataset, JSONL files on a thread pool
        run.write_table(f"mixed/p-{i:02d}.parquet", pa.table({"prompt": [f"p{i}"], "n": [i]}))
        run.write_text(f"mixed/j-{i:02d}.jsonl", f'{{"prompt": "j{i}"}}\n{{"prompt": "k{i}"}}\n')
    table = read_rows("mixed", _storage(), run, "data.source")
    assert table.num_rows == 36
    expected = {f"p{i}" for i in range(12)} | {f"{c}{i}" for c in "jk" for i in range(12)}
    assert set(table.column("prompt").to_pylist()) == expected
    run.write_text("mixed/j-05.jsonl", '{"prompt": "j5"}\n[1, 2]\n')
    with pytest.raises(ConfigError, match=r"data\.source: .*j-05\.jsonl line 2: not a JSON object"):
        read_rows("mixed", _storage(), run, "data.source")


def _storage():
    from promptcot_ray.config import StorageConfig

    return StorageConfig()


def test_run_models_resolve_inside_job_configs(tmp_path):
    run = RunDir(str(tmp_path))
    run.write_text("models/gen/final/config.json", "{}")
    cfg = load_config(
        SynthesizeConfig,
        None,
        [
            "generator.model=run:models/gen/final",
            "judges=[{name: a, llm: {model: /judge}}]",
        ],
    )
    resolved = with_run_models(cfg, run)
    # the engine loads the resolved folder; ids and lineage keep the name as written
    assert resolved.generator.source == str(tmp_path / "models/gen/final")
    assert resolved.generator.model == "run:models/gen/final"
    assert resolved.judges[0].llm.source == resolved.judges[0].llm.model == "/judge"
    assert with_run_models(LLMConfig(model="/x"), run).source == "/x"
    with pytest.raises(ConfigError, match="train it first"):
        resolve_model("run:models/other/final", run)


def test_relative_model_folders_become_absolute_for_workers(tmp_path, monkeypatch):
    (tmp_path / "models" / "tiny").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    run = RunDir(str(tmp_path / "run"))
    assert resolve_model("models/tiny", run) == str(tmp_path / "models" / "tiny")
    assert resolve_model("org/hub-model", run) == "org/hub-model"  # not a folder here: a hub name
    assert resolve_model("s3://bucket/model", run) == "s3://bucket/model"


def test_warmup_ratio_scales_with_the_run_and_replaces_the_count():
    base = load_config(TrainConfig, None, ["base_model=/m", "warmup_steps=100"])
    assert base.warmup_for(28) == 100
    ratio = load_config(TrainConfig, None, ["base_model=/m", "warmup_ratio=0.1"])
    assert ratio.warmup_for(28) == 3 and ratio.warmup_for(1000) == 100
