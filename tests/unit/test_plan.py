"""The run planner: its arithmetic, figure overrides, and the shipped 400k configs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from promptcot_ray.cli import app
from promptcot_ray.plan import PlanError, make_plan
from promptcot_ray.plan.estimate import (
    EngineLoad,
    StageLoad,
    TrainLoad,
    estimate_stage,
    gpu_hours,
    replica_rate,
    train_seconds,
)
from promptcot_ray.plan.figures import (
    InferenceFigure,
    ThroughputFigures,
    TrainingFigure,
    load_figures,
)
from promptcot_ray.plan.stages import cascade_reach, params_from_name
from promptcot_ray.plan.table import plan_lines

REPO = Path(__file__).resolve().parents[2]
CONFIGS_400K = [
    REPO / "jobs/configs/400k" / f"{name}.yaml"
    for name in (
        "concepts",
        "rationales",
        "train-generator",
        "synthesize",
        "quality",
        "distill",
        "train-student",
        "evaluate",
    )
]
runner = CliRunner()


def judge_load(replicas: int, tp: int = 4) -> EngineLoad:
    return EngineLoad(
        name="judge",
        model="meta-llama/Llama-3.1-70B-Instruct",
        params_b=70,
        tensor_parallel_size=tp,
        replicas=replicas,
        requests=100_000,
        prompt_tokens=1200,
        output_tokens=400,
    )


def stage_named(plan, label: str):
    return next(s for s in plan.stages if s.label == label)


def stage_of(*parts) -> StageLoad:
    return StageLoad(label="s", job="synthesize", parts=tuple(parts))


def test_gpu_hours_is_wall_times_replicas_times_gpus_per_replica():
    assert gpu_hours(7200, replicas=4, gpus_per_replica=2) == 16
    stage = estimate_stage(stage_of(judge_load(replicas=6)), ThroughputFigures())
    assert stage.gpus == 24
    assert stage.gpu_hours == pytest.approx(stage.wall_s / 3600 * 6 * 4)


def test_doubling_replicas_halves_wall_time_and_keeps_gpu_hours():
    figures = ThroughputFigures()
    one = estimate_stage(stage_of(judge_load(replicas=8)), figures)
    two = estimate_stage(stage_of(judge_load(replicas=16)), figures)
    assert two.wall_s == pytest.approx(one.wall_s / 2)
    assert two.gpu_hours == pytest.approx(one.gpu_hours)


def test_a_stage_lasts_as_long_as_its_slowest_part_and_holds_all_its_gpus():
    fast, slow = judge_load(replicas=20), judge_load(replicas=5)
    stage = estimate_stage(stage_of(fast, slow), ThroughputFigures())
    assert stage.wall_s == max(p.busy_s for p in stage.parts) == stage.parts[1].busy_s
    assert stage.gpus == (20 + 5) * 4


def test_training_time_is_six_params_flops_per_token_at_the_mfu():
    seconds = train_seconds(tokens=1e9, params_b=7, gpus=8, peak_tflops=1000, mfu=0.25)
    assert seconds == pytest.approx(6 * 7e9 * 1e9 / (8 * 1000e12 * 0.25))
    assert train_seconds(1e9, 7, 16, 1000, 0.25) == pytest.approx(seconds / 2)


def test_measured_inference_figure_overrides_the_default():
    default = replica_rate(70, 4, ThroughputFigures())
    assert not default.measured and default.decode_tokens_per_s == 1400
    measured = ThroughputFigures(
        inference=(
            InferenceFigure(
                params_b=70,
                tensor_parallel_size=4,
                decode_tokens_per_s=5000,
                prefill_tokens_per_s=20000,
                source="measured on a test node",
            ),
        )
    )
    rate = replica_rate(70, 4, measured)
    assert rate.measured and rate.decode_tokens_per_s == 5000
    assert rate.prefill_tokens_per_s == 20000 and not rate.scaled


def test_measured_training_figure_overrides_the_default():
    load = TrainLoad("s", "m", 7, 8, 1000, 1000.0, 1, zero_stage=2, offload="optimizer")
    figures = ThroughputFigures(
        training=(TrainingFigure(zero_stage=2, offload="optimizer", mfu=0.5, source="run"),)
    )
    default = estimate_stage(StageLoad("t", "train", (load,)), ThroughputFigures())
    measured = estimate_stage(StageLoad("t", "train", (load,)), figures)
    assert measured.parts[0].measured and not default.parts[0].measured
    assert measured.wall_s == pytest.approx(default.wall_s * 0.25 / 0.5)


def test_unlisted_sizes_scale_from_the_nearest_figure():
    rate = replica_rate(72, 4, ThroughputFigures())
    assert rate.scaled and rate.figure == "70B TP4"
    assert rate.decode_tokens_per_s == pytest.approx(1400 * 70 / 72)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("meta-llama/Llama-3.1-70B-Instruct", 70),
        ("Qwen/Qwen2.5-72B-Instruct", 72),
        ("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", 1.5),
        ("Qwen/QwQ-32B", 32),
        ("meta-llama/Llama-3.1-8B", 8),
        ("/models/qwen72b", 72),
        ("run:models/generator/final", None),
        (".cache/tiny-llama", None),
    ],
)
def test_model_size_from_its_name(model, expected):
    assert params_from_name(model) == expected


def test_the_400k_configs_make_a_plan_with_a_named_bounding_stage():
    plan = make_plan(CONFIGS_400K)
    labels = [s.label for s in plan.stages]
    assert labels == [p.stem for p in CONFIGS_400K]
    assert plan.bounding.label in labels
    assert plan.bounding.wall_s == max(s.wall_s for s in plan.stages)
    assert plan.sizes.combinations == 1_600_000  # 400k at the assumed 25%
    assert plan.total_gpu_hours == pytest.approx(sum(s.gpu_hours for s in plan.stages))
    synth = plan.stages[labels.index("synthesize")]
    assert synth.gpus == 16 + 2 * 20 * 4
    assert any(line.startswith(f"Bounded by: {plan.bounding.label}") for line in plan_lines(plan))


def test_accept_rate_sizes_the_synthesis_stage():
    base = make_plan(CONFIGS_400K)
    easy = make_plan(CONFIGS_400K, accept_rate=0.5)
    assert easy.sizes.combinations == 800_000
    synth, easy_synth = stage_named(base, "synthesize"), stage_named(easy, "synthesize")
    assert easy_synth.wall_s == pytest.approx(synth.wall_s / 2, rel=1e-3)


def test_set_overrides_reach_the_named_config():
    base = make_plan(CONFIGS_400K)
    replicas = yaml.safe_load((REPO / "jobs/configs/400k/distill.yaml").read_text())["teacher"][
        "replicas"
    ]
    more = make_plan(CONFIGS_400K, overrides=[f"distill.teacher.replicas={2 * replicas}"])
    wall = {s.label: s.wall_s for s in base.stages}
    wall_more = {s.label: s.wall_s for s in more.stages}
    assert wall_more["distill"] == pytest.approx(wall["distill"] / 2)
    assert wall_more["synthesize"] == wall["synthesize"]


def test_run_models_take_their_size_from_the_train_config():
    without_train = [p for p in CONFIGS_400K if p.stem != "train-generator"]
    with pytest.raises(PlanError, match="--params-b"):
        make_plan(without_train)
    given = make_plan(without_train, params_b=["run:models/generator/final=8"])
    derived = make_plan(CONFIGS_400K)  # train-generator.yaml: meta-llama/Llama-3.1-8B
    assert stage_named(given, "synthesize").wall_s == stage_named(derived, "synthesize").wall_s


def test_measured_figures_file_replaces_defaults(tmp_path):
    path = tmp_path / "throughput-measured.yaml"
    path.write_text(
        "gpu: H100 80GB SXM\n"
        "inference:\n"
        "  - {params_b: 7, tensor_parallel_size: 1, decode_tokens_per_s: 3400, source: bench}\n"
        "workload: {accept_rate: 0.2}\n"
    )
    figures = load_figures(path)
    assert figures.workload.accept_rate == 0.2 and figures.workload.parse_rate == 0.95
    plan = make_plan(CONFIGS_400K, throughput=path)
    assert plan.sizes.combinations == 2_000_000
    teacher = stage_named(plan, "distill").parts[0]
    assert teacher.measured and teacher.figure == "7B TP1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("inference: [{params_b: 8, decode_tokens_per_s: 1}]\n", "inference.0.source"),
        ("workload: {accept_rte: 0.2}\n", "workload.accept_rte"),
        ("gpu: [\n", "not valid YAML"),
    ],
)
def test_a_bad_figures_file_names_the_problem(tmp_path, text, message):
    path = tmp_path / "figures.yaml"
    path.write_text(text)
    with pytest.raises(PlanError, match=message.replace(".", r"\.")):
        load_figures(path)


def test_cpu_configs_are_refused_with_a_reason():
    with pytest.raises(PlanError, match="device: cpu"):
        make_plan([REPO / "jobs/configs/local.yaml"])


@pytest.mark.parametrize("as_options", [True, False])
def test_cli_prints_the_plan(as_options):
    paths = [str(p) for p in CONFIGS_400K]
    args = [a for p in paths for a in ("--config", p)] if as_options else paths
    result = runner.invoke(app, ["plan", *args], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Bounded by:" in result.output and "GPU-hours" in result.output
    assert "ESTIMATES" in result.output


def test_cli_without_configs_says_what_to_give():
    result = runner.invoke(app, ["plan"])
    assert result.exit_code == 2 and "at least one" in result.output


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        ("job: synthesize\ngeneratr: {model: x}\n", [], "generatr"),
        ("job: nonsense\n", [], "unknown"),
        ("just text\n", [], "expected a mapping"),
        ("job: quality\n", ["--set", "nope.x=1"], "start it with a config's file name"),
        ("job: quality\n", ["--params-b", "oops"], "MODEL=BILLIONS"),
    ],
)
def test_cli_bad_input_is_a_clear_error_not_a_traceback(tmp_path, content, extra, message):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    result = runner.invoke(app, ["plan", "--config", str(path), *extra])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_cli_missing_config_file(tmp_path):
    result = runner.invoke(app, ["plan", "--config", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2 and "not found" in result.output


def test_a_pipeline_config_beside_the_jobs_is_skipped_with_a_note(tmp_path):
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text("rounds: 1\nconcepts: {config: jobs/configs/400k/concepts.yaml}\n")
    plan = make_plan([*CONFIGS_400K, pipeline])
    assert [s.label for s in plan.stages] == [p.stem for p in CONFIGS_400K]
    assert any("skipped" in line and "pipeline.yaml" in line for line in plan_lines(plan))
    with pytest.raises(PlanError, match="rationales"):  # alone it is a pipeline: validated
        make_plan([pipeline])


PIPELINE_400K = REPO / "jobs/configs/400k/pipeline.yaml"
PIPELINE_STAGES = [
    "concepts",
    "rationales",
    "train-generator",
    "synthesize-0",
    "train-generator-round-1",
    "synthesize-1",
    "quality",
    "distill",
    "train-student",
    "evaluate",
]


def test_the_400k_pipeline_is_priced_round_by_round_with_its_retraining():
    plan = make_plan([PIPELINE_400K], accept_rate=0.25)
    assert [s.label for s in plan.stages] == PIPELINE_STAGES
    assert plan.target == 400_000 and plan.sizes.combinations == 1_600_000
    for k in (0, 1):  # each round priced for its own 200k target, not the run's 400k
        generator = stage_named(plan, f"synthesize-{k}").parts[0]
        assert generator.requests == 800_000
    seeds = plan.sizes.seeds
    assert stage_named(plan, "train-generator").parts[0].requests == seeds  # the rationales
    retrain = stage_named(plan, "train-generator-round-1").parts[0]
    assert retrain.requests == 200_000 + seeds  # round 0's accepted + the rationale rows
    distill = stage_named(plan, "distill").parts[0]
    assert distill.requests == plan.sizes.problems * 4  # both rounds' accepted, 4 samples
    lines = "\n".join(plan_lines(plan))
    assert "round 0 200,000 accepted from ~800,000 combinations" in lines
    assert "distilled: every round's accepted problems (400,000)" in lines
    assert plan.total_gpu_hours == pytest.approx(sum(s.gpu_hours for s in plan.stages))


def test_pipeline_overrides_reach_the_rounds_and_what_is_distilled():
    plan = make_plan(
        [PIPELINE_400K],
        accept_rate=0.25,
        overrides=["pipeline.round_targets=[100000, 300000]", "pipeline.distill_rounds=last"],
    )
    assert stage_named(plan, "synthesize-1").parts[0].requests == 1_200_000
    assert stage_named(plan, "train-generator-round-1").parts[0].requests == (
        100_000 + plan.sizes.seeds
    )
    assert plan.target == 300_000  # only the last round goes on to distillation
    assert stage_named(plan, "distill").parts[0].requests == math.ceil(300_000 * 0.95) * 4


def test_a_target_that_contradicts_the_round_targets_is_refused():
    with pytest.raises(PlanError, match="add up to 400,000"):
        make_plan([PIPELINE_400K], target=300_000)
    plan = make_plan([PIPELINE_400K], target=90_000, overrides=["pipeline.round_targets=null"])
    assert [stage_named(plan, f"synthesize-{k}").parts[0].requests for k in (0, 1)] == [
        180_000,
        180_000,
    ]


def test_the_cli_plans_a_pipeline_config():
    result = runner.invoke(app, ["plan", "--config", str(PIPELINE_400K)])
    assert result.exit_code == 0, result.output
    assert "train-generator-round-1" in result.output.replace("\n", "")
    assert "Pipeline: 2 rounds" in result.output


def test_an_external_judge_uses_no_cluster_gpus_and_is_not_timed():
    plan = make_plan(
        CONFIGS_400K,
        overrides=[
            "synthesize.judges.1.llm.engine=openai",
            "synthesize.judges.1.llm.base_url=http://judge.example:8000/v1",
            "synthesize.judges.1.llm.model=some-hosted-judge",
        ],
    )
    synth = stage_named(plan, "synthesize")
    assert synth.parts[2].busy_s is None and synth.parts[2].gpus == 0
    assert synth.gpus == 16 + 20 * 4
    assert synth.wall_s == max(synth.parts[0].busy_s, synth.parts[1].busy_s)


def test_a_judge_cascade_prices_later_judges_on_what_earlier_ones_passed():
    """At a 25% accept rate over two judges, the second judges ~50% of drafts (plus the
    audited 5% of the rest); with the cascade off it judges all of them."""
    assert cascade_reach(2, 0.25, 0.05) == pytest.approx([1.0, 0.5 + 0.5 * 0.05])
    on = stage_named(make_plan(CONFIGS_400K, accept_rate=0.25), "synthesize")
    off_plan = make_plan(
        CONFIGS_400K, accept_rate=0.25, overrides=["synthesize.cascade.enabled=false"]
    )
    off = stage_named(off_plan, "synthesize")
    assert [p.name for p in on.parts[1:3]] == [p.name for p in off.parts[1:3]]
    assert on.parts[1].requests == off.parts[1].requests  # the first judge judges all
    assert on.parts[2].requests == pytest.approx(off.parts[2].requests * 0.525, rel=1e-3)
    assert any("judge cascade" in n for n in on.notes)
    assert not any("judge cascade" in n for n in off.notes)
    assert on.parts[2].busy_s < off.parts[2].busy_s
