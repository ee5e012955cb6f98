"""Training throughput: tokens/s and model FLOPs utilisation (MFU) of the train job.

Builds a random Llama of a chosen size offline (GPU machines here reach no model hub),
writes fixed-length SFT rows, and runs the real train job (Ray Train + DeepSpeed) once per
ZeRO setting given, side by side in one process, then prints tokens/s, MFU and each
setting's ratio to the first.

    # on a GPU machine (H100: 989 dense bf16 TFLOP/s per GPU)
    .venv/bin/python benchmarks/train_gpu.py --preset llama-1b --zero 2 3 --gpus 1
    # CPU smoke run of the same code path (numbers meaningless)
    .venv/bin/python benchmarks/train_gpu.py --preset tiny --cpu --steps 6

MFU = 6 x parameters x tokens/s / (GPUs x peak FLOP/s): the usual dense-transformer
estimate (forward + backward), ignoring attention FLOPs, so it slightly understates.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

PRESETS = {  # hidden, layers, heads, kv heads, intermediate
    "tiny": (128, 2, 4, 4, 256),
    "llama-1b": (2048, 16, 32, 8, 8192),
    "llama-3b": (3072, 28, 24, 8, 8192),
    "llama-8b": (4096, 32, 32, 8, 14336),
}
PEAK_TFLOPS = {"h100": 989.0, "h200": 989.0, "a100": 312.0, "cpu": 1.0}


def build_model(preset: str, out: Path) -> int:
    """A random Llama of `preset` with the project's offline tokenizer; returns parameters."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from promptcot_ray.llm.tiny_model import build_tokenizer

    hidden, layers, heads, kv, inter = PRESETS[preset]
    tokenizer = build_tokenizer(2048)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=inter,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv,
        max_position_embeddings=8192,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.device("meta"):
        params = LlamaForCausalLM(config).num_parameters()
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return params


def write_rows(path: Path, rows: int, words: int) -> None:
    """Rows of about `words` words each: a short prompt, a long completion."""
    import random

    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(500)]
    with open(path, "w") as f:
        for i in range(rows):
            completion = " ".join(rng.choice(vocab) for _ in range(words))
            f.write(json.dumps({"prompt": f"Solve problem {i}.", "completion": completion}) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="llama-1b", choices=sorted(PRESETS))
    parser.add_argument("--zero", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--gpus", type=int, default=1)
    parser.add_argument("--gpu-kind", default="h100", choices=sorted(PEAK_TFLOPS))
    parser.add_argument("--cpu", action="store_true", help="gloo + fp32 smoke run")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--max-length", type=int, default=4096)
    parser.add_argument("--micro-batch", type=int, default=4)
    args = parser.parse_args()

    import ray

    from promptcot_ray.config import load_config
    from promptcot_ray.train import job as train
    from promptcot_ray.train.config import TrainConfig

    work = Path(tempfile.mkdtemp(prefix="train-bench-"))
    params = build_model(args.preset, work / "model")
    gpus = 0 if args.cpu else args.gpus
    workers = 2 if args.cpu else max(1, gpus)
    rows = args.steps * args.micro_batch * workers  # exactly the rows the steps consume
    write_rows(work / "rows.jsonl", rows=rows, words=args.max_length)  # ~1.3 tokens a word
    peak = PEAK_TFLOPS["cpu" if args.cpu else args.gpu_kind] * 1e12
    ray.init(num_cpus=8 if args.cpu else None)
    results = []
    for stage in args.zero:
        overrides = [
            f"storage.run_dir={work / f'run-zero{stage}'}",
            f"base_model={work / 'model'}",
            f"data.source={work / 'rows.jsonl'}",
            f"num_workers={workers}",
            f"use_gpu={not args.cpu}",
            f"precision={'fp32' if args.cpu else 'bf16'}",
            f"deepspeed.zero_stage={stage}",
            f"micro_batch_size={args.micro_batch}",
            "gradient_accumulation_steps=1",
            f"max_length={args.max_length}",
            "overflow=truncate",
            "packing=false",
            f"max_steps={args.steps}",
            f"checkpoint_every_steps={args.steps}",
            "export=false",
            "warmup_steps=0",
        ]
        cfg = load_config(TrainConfig, None, overrides)
        train.run(cfg)
        curve = train.curve_from_csv(
            (work / f"run-zero{stage}/models/generator/loss_curve.csv").read_text()
        )
        steady = curve[2:] or curve  # the first steps include compilation and warm-up
        tokens_per_s = sum(r["tokens"] for r in steady) / sum(r["step_seconds"] for r in steady)
        mfu = 6 * params * tokens_per_s / (max(1, gpus) * peak)
        results.append((stage, tokens_per_s, mfu))
    ray.shutdown()
    print(
        f"\n{args.preset}: {params / 1e9:.2f}B parameters, {gpus or 'CPU'} GPU(s), "
        f"micro-batch {args.micro_batch} x {args.max_length} tokens"
    )
    print(f"{'ZeRO':>5} {'tokens/s':>12} {'MFU':>7} {'vs first':>9}")
    for stage, tps, mfu in results:
        print(f"{stage:>5} {tps:>12.0f} {100 * mfu:>6.1f}% {tps / results[0][1]:>8.2f}x")


if __name__ == "__main__":
    main()
