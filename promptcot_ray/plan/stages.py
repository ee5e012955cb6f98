"""Turn job configs into stage loads: how many requests of which length hit which model.

Prompt lengths come from the project's own prompt builders filled with text of typical
length (counted at `chars_per_token`), output lengths from the typical figures in
`Workload`, capped by each config's max_tokens: a plan follows the prompts when they change.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from promptcot_ray import layout
from promptcot_ray.config import LLMConfig
from promptcot_ray.plan.configs import JobFile, PlanError
from promptcot_ray.plan.estimate import CpuLoad, EngineLoad, StageLoad, TrainLoad
from promptcot_ray.plan.figures import ThroughputFigures, Workload
from promptcot_ray.prompts.concepts import build_concept_messages
from promptcot_ray.prompts.generator import build_generator_messages, format_completion
from promptcot_ray.prompts.judge import build_judge_messages
from promptcot_ray.prompts.rationale import build_rationale_messages
from promptcot_ray.prompts.solve import build_solve_messages

SIZE_IN_NAME = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)[bB](?![a-zA-Z])")
RUN_MODEL = re.compile(r"^run:models/([^/]+)/final/?$")
TEMPLATE_TOKENS_PER_MESSAGE = 8  # role header and end-of-turn tokens a chat template adds
LEVEL = "AIME"


@dataclass(frozen=True)
class Sizes:
    """Rows at each hand-off of the run, derived from the target and the workload rates."""

    seeds: int
    combinations: int
    accepted: int
    problems: int
    labelled: int
    samples_per_problem: int
    sft_rows: int


@dataclass(frozen=True)
class Context:
    sizes: Sizes
    figures: ThroughputFigures
    base_models: dict[str, str]  # train config name -> base_model, for run:models/<name>/final
    generator_rows: int | None = None  # a pipeline's later-round generator: its SFT rows

    @property
    def workload(self) -> Workload:
        return self.figures.workload


def params_from_name(model: str) -> float | None:
    """Billions of parameters a model name states (`...-70B-Instruct` -> 70), else None."""
    found = SIZE_IN_NAME.findall(model.rsplit("/", 1)[-1]) or SIZE_IN_NAME.findall(model)
    return float(found[-1]) if found else None


def model_params_b(model: str, ctx: Context, seen: tuple[str, ...] = ()) -> float:
    """A model's size: an explicit params_b, its train config's base model, or its name."""
    if model in ctx.figures.params_b:
        return ctx.figures.params_b[model]
    run = RUN_MODEL.match(model)
    if run and run.group(1) in ctx.base_models and model not in seen:
        return model_params_b(ctx.base_models[run.group(1)], ctx, (*seen, model))
    size = params_from_name(model)
    if size is None:
        raise PlanError(
            f"cannot tell the size of model {model!r} from its name: pass --params-b "
            f"'{model}=N' (billions) or add it under params_b in the --throughput file"
        )
    return size


def prompt_tokens(messages: list[dict[str, str]], wl: Workload) -> float:
    """Tokens of a chat prompt, from its characters (no tokenizer is loaded to plan)."""
    chars = sum(len(m["content"]) for m in messages)
    return chars / wl.chars_per_token + TEMPLATE_TOKENS_PER_MESSAGE * len(messages)


def _text(tokens: int, wl: Workload) -> str:
    return "x" * int(tokens * wl.chars_per_token)


def _concepts(n: int, wl: Workload) -> list[str]:
    return [_text(wl.concept_tokens, wl)] * n


def _draft_tokens(wl: Workload) -> float:
    completion = format_completion(
        _text(wl.rationale_tokens, wl), _text(wl.seed_problem_tokens, wl)
    )
    return len(completion) / wl.chars_per_token


def _out(llm: LLMConfig, typical: float) -> float:
    return min(float(llm.max_tokens), typical)


def engine(
    name: str, llm: LLMConfig, requests: int, prompt: float, output: float, ctx: Context
) -> EngineLoad:
    """One engine pool's load; a CPU engine is refused (the plan prices GPU runs)."""
    if llm.engine == "vllm" and llm.device == "cpu":
        raise PlanError(
            f"{name}: model {llm.model!r} runs on device: cpu; the planner prices GPU runs "
            "(set device: gpu and tensor_parallel_size)"
        )
    return EngineLoad(
        name=name,
        model=llm.model,
        params_b=0.0 if llm.engine == "openai" else model_params_b(llm.model, ctx),
        tensor_parallel_size=llm.tensor_parallel_size,
        replicas=llm.max_replicas,
        requests=requests,
        prompt_tokens=prompt,
        output_tokens=_out(llm, output),
        external=llm.engine == "openai",
    )


def concepts_stage(f: JobFile, ctx: Context) -> StageLoad:
    cfg, wl = f.cfg, ctx.workload
    prompt = prompt_tokens(build_concept_messages(_text(wl.seed_problem_tokens, wl), cfg.k), wl)
    part = engine(
        "extractor", cfg.extractor, ctx.sizes.seeds, prompt, wl.concepts_output_tokens, ctx
    )
    note = "pool embeddings (sentence-transformers) take minutes and are not priced"
    return StageLoad(f.label, f.job, (part,), (note,))


def rationales_stage(f: JobFile, ctx: Context) -> StageLoad:
    cfg, wl = f.cfg, ctx.workload
    messages = build_rationale_messages(_text(wl.seed_problem_tokens, wl), _concepts(5, wl), LEVEL)
    requests = ctx.sizes.seeds * cfg.best_of_n
    parts: list[Any] = [
        engine(
            "writer",
            cfg.writer,
            requests,
            prompt_tokens(messages, wl),
            wl.rationale_tokens + 20,
            ctx,
        )
    ]
    if cfg.best_of_n > 1 and cfg.scorer is not None:
        scored = prompt_tokens(
            build_generator_messages(_concepts(5, wl), LEVEL), wl
        ) + _draft_tokens(wl)
        parts.append(engine("scorer", cfg.scorer, requests, scored, 1, ctx))
    return StageLoad(f.label, f.job, tuple(parts))


def train_stage(f: JobFile, ctx: Context) -> StageLoad:
    cfg, wl, sizes = f.cfg, ctx.workload, ctx.sizes
    if not cfg.use_gpu:
        raise PlanError(f"{f.path}: use_gpu is false; the planner prices GPU runs")
    source = cfg.data.source
    if source.startswith(layout.DISTILL_SFT):
        rows = sizes.sft_rows
        row = prompt_tokens(build_solve_messages(_text(wl.seed_problem_tokens, wl)), wl)
        row += wl.teacher_output_tokens
    else:  # rationales/data, or accepted rows of a later round
        rows = sizes.seeds if source.startswith("rationales") else sizes.accepted
        if ctx.generator_rows is not None:
            rows = ctx.generator_rows
        row = prompt_tokens(build_generator_messages(_concepts(5, wl), LEVEL), wl) + _draft_tokens(
            wl
        )
    if cfg.data.max_rows:
        rows = min(rows, cfg.data.max_rows)
    ds = cfg.deepspeed
    offload = "params" if ds.offload_params else "optimizer" if ds.offload_optimizer else "none"
    load = TrainLoad(
        name=cfg.name,
        model=cfg.base_model,
        params_b=model_params_b(cfg.base_model, ctx),
        workers=cfg.num_workers,
        rows=rows,
        tokens_per_row=min(row, float(cfg.max_length)),
        epochs=cfg.epochs,
        zero_stage=ds.zero_stage,
        offload=offload,
    )
    return StageLoad(f.label, f.job, (load,), (f"rows from {source}",))


def cascade_reach(num_judges: int, accept_rate: float, audit_fraction: float) -> list[float]:
    """Share of parsed drafts each judge of a cascade judges: judge k sees what every earlier
    judge passed, plus the audited sample of the rest. Judges are assumed to pass drafts
    independently at the same rate, accept_rate ** (1 / judges), so all of them together
    pass the workload's accept rate."""
    passed = accept_rate ** (1 / num_judges) if num_judges else 1.0
    return [passed**k + (1 - passed**k) * audit_fraction for k in range(num_judges)]


def synthesize_stage(f: JobFile, ctx: Context) -> StageLoad:
    cfg, wl, sizes = f.cfg, ctx.workload, ctx.sizes
    concepts = _concepts(cfg.combinations.size, wl)
    gen_prompt = prompt_tokens(build_generator_messages(concepts, LEVEL), wl)
    parts: list[Any] = [
        engine("generator", cfg.generator, sizes.combinations, gen_prompt, _draft_tokens(wl), ctx)
    ]
    judged = math.ceil(sizes.combinations * wl.parse_rate)
    reach = (
        cascade_reach(len(cfg.judges), wl.accept_rate, cfg.cascade.audit_fraction)
        if cfg.cascade_on
        else [1.0] * len(cfg.judges)
    )
    for judge, share in zip(cfg.judges, reach, strict=True):
        messages = build_judge_messages(
            concepts,
            LEVEL,
            _text(wl.rationale_tokens, wl),
            _text(wl.seed_problem_tokens, wl),
            judge.reply_format,
        )
        parts.append(
            engine(
                f"judge {judge.name}",
                judge.llm,
                math.ceil(judged * share),
                prompt_tokens(messages, wl),
                wl.judge_output_tokens,
                ctx,
            )
        )
    if cfg.quality is not None:
        parts.append(
            CpuLoad("quality gates", sizes.accepted, wl.quality_rows_per_cpu_s, wl.cpu_stage_cpus)
        )
    if cfg.quota is not None:  # a quota round samples until its target, whatever the rate
        note = (
            f"priced for {sizes.combinations:,} combinations (target / accept rate); the config "
            f"samples until {cfg.quota.total:,} are accepted"
            + (
                f", at most {cfg.quota.max_combinations:,} combinations"
                if cfg.quota.max_combinations
                else ""
            )
        )
        return StageLoad(f.label, f.job, tuple(parts), (note, *_cascade_note(cfg, reach)))
    configured = cfg.combinations.num_combinations
    expected = configured * wl.accept_rate
    verdict = "enough" if expected >= sizes.accepted else "SHORT of the target"
    note = (
        f"priced for {sizes.combinations:,} combinations (target / accept rate); the config "
        f"samples {configured:,}, ~{expected:,.0f} accepted at {wl.accept_rate:.0%}: {verdict}"
    )
    return StageLoad(f.label, f.job, tuple(parts), (note, *_cascade_note(cfg, reach)))


def _cascade_note(cfg: Any, reach: list[float]) -> tuple[str, ...]:
    if not cfg.cascade_on:
        return ()
    shares = ", ".join(f"{j.name} {r:.0%}" for j, r in zip(cfg.judges, reach, strict=True))
    return (f"judge cascade: share of parsed drafts each judge judges: {shares}",)


def quality_stage(f: JobFile, ctx: Context) -> StageLoad:
    wl = ctx.workload
    part = CpuLoad(
        "dedup + decontamination", ctx.sizes.accepted, wl.quality_rows_per_cpu_s, wl.cpu_stage_cpus
    )
    return StageLoad(f.label, f.job, (part,), (f"keeps ~{wl.quality_keep_rate:.0%} (assumed)",))


def distill_stage(f: JobFile, ctx: Context) -> StageLoad:
    cfg, wl, sizes = f.cfg, ctx.workload, ctx.sizes
    prompt = prompt_tokens(
        build_solve_messages(_text(wl.seed_problem_tokens, wl), cfg.instruction), wl
    )
    requests = sizes.problems * cfg.samples_per_problem
    part = engine("teacher", cfg.teacher, requests, prompt, wl.teacher_output_tokens, ctx)
    notes = [f"{sizes.problems:,} problems x {cfg.samples_per_problem} samples"]
    if cfg.teacher.max_tokens < wl.teacher_output_tokens:
        notes.append(f"max_tokens {cfg.teacher.max_tokens} is below a typical solution: cut-offs")
    return StageLoad(f.label, f.job, (part,), tuple(notes))


def eval_items(cfg: Any, ctx: Context) -> int:
    """Items over every set: a limit, the labelled problems, or the known set size."""
    wl, total = ctx.workload, 0
    for s in cfg.benchmarks:
        if s.path and s.path.rstrip("/").startswith(layout.LABELS):
            n = ctx.sizes.labelled
        else:
            n = wl.eval_items.get(s.name, wl.eval_items_default)
        total += min(n, s.limit) if s.limit else n
    return total


def evaluate_stage(f: JobFile, ctx: Context) -> StageLoad:
    cfg, wl = f.cfg, ctx.workload
    items = eval_items(cfg, ctx)
    prompt = prompt_tokens(
        build_solve_messages(_text(wl.seed_problem_tokens, wl), cfg.instruction), wl
    )
    parts: list[Any] = [
        engine("model", cfg.model, items * cfg.runs, prompt, wl.eval_output_tokens, ctx)
    ]
    if cfg.difficulty and cfg.reasoner is not None:
        parts.append(
            engine(
                "reasoner",
                cfg.reasoner,
                items * cfg.reasoner_runs,
                prompt,
                wl.eval_output_tokens,
                ctx,
            )
        )
    return StageLoad(f.label, f.job, tuple(parts), (f"{items:,} items x {cfg.runs} runs",))


BUILDERS = {
    "concepts": concepts_stage,
    "rationales": rationales_stage,
    "train": train_stage,
    "synthesize": synthesize_stage,
    "quality": quality_stage,
    "distill": distill_stage,
    "evaluate": evaluate_stage,
}


RUN_ORDER = ("concepts", "rationales", "train", "synthesize", "quality", "distill", "student")


def run_order(f: JobFile) -> int:
    """Where a job sits in the run: a student's training comes after distillation."""
    if f.job == "train" and f.cfg.data.source.startswith(layout.DISTILL + "/"):
        return RUN_ORDER.index("student")
    return RUN_ORDER.index(f.job) if f.job in RUN_ORDER else len(RUN_ORDER)
