"""Check a job against the world before any engine starts: seconds, not minutes.

`check_config` runs right after the config loads and needs no Ray: model folders hold a
model, `run:` models exist (or an earlier pipeline stage makes them), API-key variables
are set, inputs exist and have their columns. It returns the engine pools and worker
groups; `check_cluster` then, once connected, fails when no node offers what a pool asks
for (a `device: gpu` pool on a CPU-only cluster would otherwise wait forever).
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from promptcot_ray import layout
from promptcot_ray.concepts.config import SeedSource
from promptcot_ray.config import ConfigError, LLMConfig, StorageConfig
from promptcot_ray.errors import UserError
from promptcot_ray.input_checks import Wanted, check_rows, is_dir, locate
from promptcot_ray.quality.config import BenchmarkSource
from promptcot_ray.sources import is_external
from promptcot_ray.storage import RunDir
from promptcot_ray.synthesis.config import PoolConfig

logger = logging.getLogger(__name__)

RUN_PREFIX = "run:"
POOL_DIR = layout.POOL
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")
# A hub id ("gpt2", "Qwen/Qwen2.5-7B"): what a model name that is not a path looks like.
HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?")


class ClusterError(UserError):
    """The Ray cluster cannot host an engine pool or worker group the config asks for."""


@dataclass(frozen=True)
class Pool:
    """Resources one engine replica or one training worker group asks for."""

    key: str  # config key, e.g. "judges.0.llm"
    bundle: dict[str, float]  # one placement bundle (a node must offer it whole)
    count: int  # bundles per replica (tensor parallel) or per worker group
    why: str  # the settings behind the request, for the message
    strategy: str = "PACK"  # STRICT_PACK: all `count` bundles on one node

    @property
    def asked(self) -> str:
        where = " on one node" if self.strategy == "STRICT_PACK" and self.count > 1 else ""
        return f"{self.count} x {self.bundle}{where}"


@dataclass(frozen=True)
class Context:
    """What a check may assume: the run directory and what earlier pipeline stages make."""

    run: RunDir
    storage: StorageConfig
    produced: frozenset[str] = frozenset()  # run-relative folders earlier stages write
    in_pipeline: bool = False


def walk(value: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    """Every sub-config with its dotted key (tuples by index), depth first."""
    if isinstance(value, BaseModel):
        yield key, value
        for name in type(value).model_fields:
            yield from walk(getattr(value, name), f"{key}.{name}" if key else name)
    elif isinstance(value, tuple):
        for index, item in enumerate(value):
            yield from walk(item, f"{key}.{index}")


def _model_files_problem(folder: RunDir, rel: str) -> str | None:
    if not folder.exists(rel):
        return "nothing there"
    if not is_dir(folder, rel):
        return "it is a file, not a folder"
    if not folder.exists(f"{rel}/config.json"):
        return "no config.json in it (not a Hugging Face model folder)"
    if not any(folder.exists(f"{rel}/{n}") for n in TOKENIZER_FILES):
        return f"no tokenizer in it (none of {', '.join(TOKENIZER_FILES)})"
    return None


def check_model(key: str, model: str, ctx: Context) -> None:
    """A model path holds a model; a `run:` model exists or an earlier stage trains it."""
    if model.startswith(RUN_PREFIX):
        rel = model[len(RUN_PREFIX) :].strip("/")
        if rel in ctx.produced:
            return
        folder, where = ctx.run, ctx.run.uri_of(rel)
        fix = "train it first (promptcot-ray train) or give a path"
    elif model.startswith(("s3://", "s3a://")):
        parent, rel = posixpath.split(model.rstrip("/"))
        folder, where, fix = RunDir(parent, ctx.storage), model, "check the URI"
    elif "://" in model:
        return  # another scheme: the engine resolves it
    else:
        local = os.path.abspath(os.path.expanduser(model))
        if not os.path.exists(local) and HUB_ID.fullmatch(model):
            return  # a hub name: downloaded by the engine (offline it fails there)
        (parent, rel), where = os.path.split(local), local
        folder = RunDir(parent)
        fix = "give the folder of a Hugging Face model (config.json + tokenizer)"
    problem = _model_files_problem(folder, rel)
    if problem:
        raise ConfigError(f"{key}: model {model!r} at {where}: {problem}; {fix}")


def check_llm(key: str, llm: LLMConfig, ctx: Context) -> list[Pool]:
    """One engine use: its model (vllm) or its API key variable (openai); its pool."""
    if llm.engine == "openai":
        if llm.api_key_env and not os.environ.get(llm.api_key_env):
            raise ConfigError(
                f"{key}.api_key_env: environment variable {llm.api_key_env} is unset or "
                "empty; export it before the job starts (the key never goes in a config file)"
            )
        return []
    if llm.engine != "vllm":  # e.g. the rehearsal stand-in: no model, no engine pool
        return []
    from promptcot_ray.llm.engine import placement_group_config

    check_model(f"{key}.model", llm.model, ctx)
    placement = placement_group_config(llm)  # exactly what the engine pool will ask for
    bundle = {name: float(n) for name, n in placement["bundles"][0].items()}
    why = f"device: {llm.device}, tensor_parallel_size: {llm.tensor_parallel_size}"
    if llm.node_resource:
        why += f", node_resource: {llm.node_resource}"
    return [Pool(key, bundle, len(placement["bundles"]), why, placement["strategy"])]


def check_input(
    key: str, source: str, wanted: tuple[Wanted, ...], ctx: Context, file_only: bool = False
) -> None:
    """An input file or dataset exists, has rows and the columns; a run-directory dataset
    that an earlier pipeline stage writes is trusted (it does not exist yet)."""
    if not is_external(source) and ctx.in_pipeline:
        return
    folder, name = locate(source, ctx.storage, ctx.run)
    check_rows(key, folder, name, wanted, file_only)


def _check_part(key: str, at: str, part: Any, ctx: Context) -> list[Pool]:
    """The checks of one sub-config, chosen by its type; `at` prefixes its field names."""
    from promptcot_ray.distill.config import DistillConfig
    from promptcot_ray.evaluate.config import EvalSet
    from promptcot_ray.train.config import TrainConfig, TrainData

    if isinstance(part, LLMConfig):
        return check_llm(key, part, ctx)
    if isinstance(part, SeedSource) and part.path:
        wanted = (Wanted(part.problem_column, f"{at}problem_column"),)
        check_input(f"{at}path", part.path, wanted, ctx)
    elif isinstance(part, BenchmarkSource) and part.path:
        wanted = (Wanted(part.problem_column, f"{at}problem_column"),)
        check_input(f"{at}path ({part.name})", part.path, wanted, ctx, file_only=True)
    elif isinstance(part, EvalSet) and part.path:
        wanted = (
            Wanted(part.problem_column, f"{at}problem_column"),
            Wanted(part.answer_column, f"{at}answer_column"),
        )
        check_input(f"{at}path ({part.name})", part.path, wanted, ctx)
    elif isinstance(part, TrainData):
        wanted = (
            Wanted(part.prompt_column, f"{at}prompt_column"),
            Wanted(part.completion_column, f"{at}completion_column"),
        )
        check_input(f"{at}source", part.source, wanted, ctx)
    elif isinstance(part, PoolConfig):
        _check_pool(at, part, ctx)
    elif isinstance(part, DistillConfig) and part.problems != "auto":
        check_input(f"{at}problems", part.problems, (Wanted("problem", "problems"),), ctx)
    elif isinstance(part, TrainConfig):
        if not part.rehearse:  # a rehearsal trains the tiny model, not base_model
            check_model(f"{at}base_model", part.base_model, ctx)
        bundle = {"CPU": part.cpus_per_worker, **({"GPU": 1.0} if part.use_gpu else {})}
        why = f"num_workers: {part.num_workers}, use_gpu: {str(part.use_gpu).lower()}"
        return [Pool(key, bundle, part.num_workers, why)]
    return []


def _check_pool(at: str, part: PoolConfig, ctx: Context) -> None:
    if part.source == "run":
        if POOL_DIR not in ctx.produced and not ctx.run.is_complete(POOL_DIR):
            raise ConfigError(
                f"{at}source: run, but {ctx.run.uri_of(POOL_DIR)} has no complete pool: run "
                "the concepts job first, or set pool.source: builtin (or a concept-list file)"
            )
    elif part.source != "builtin":
        check_input(f"{at}source", part.source, (Wanted("concepts", f"{at}source"),), ctx, True)


def check_job(cfg: BaseModel, ctx: Context, prefix: str = "") -> list[Pool]:
    """Every check of one job config; the pools its engines and workers need."""
    pools: list[Pool] = []
    for key, part in walk(cfg):
        name = f"{prefix}{key}" if key else prefix.rstrip(": ") or "train"  # root: the job
        pools += _check_part(name, f"{prefix}{key}." if key else prefix, part, ctx)
    return pools


def _check_run_dir(storage: StorageConfig) -> RunDir:
    """The run directory can be written: S3 by a probe object; a local folder without
    creating it (a refused job leaves no trace)."""
    run = RunDir(storage.run_dir, storage)
    if run.is_s3:
        run.preflight()
        return run
    if os.path.exists(run.root) and not os.path.isdir(run.root):
        raise ConfigError(f"storage.run_dir: {run.root} is a file; give a folder (or s3://)")
    parent = run.root
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
        raise ConfigError(f"storage.run_dir: cannot create or write {run.root} ({parent})")
    return run


def check_config(cfg: Any) -> list[Pool]:
    """All checks that need no cluster; returns the pools for `check_cluster`."""
    from promptcot_ray.pipeline.config import PipelineConfig

    run = _check_run_dir(cfg.storage)
    if isinstance(cfg, PipelineConfig):
        return check_pipeline(cfg, run)
    return check_job(cfg, Context(run, cfg.storage))


def check_pipeline(cfg: Any, run: RunDir) -> list[Pool]:
    """Each stage in order; a `run:` model or pool an earlier stage makes is fine."""
    from promptcot_ray.model_paths import export_dir
    from promptcot_ray.pipeline.job import plan

    produced: set[str] = set()
    pools: list[Pool] = []
    for stage in plan(cfg):
        if stage.config is not None:
            ctx = Context(run, cfg.storage, frozenset(produced), in_pipeline=True)
            pools += check_job(stage.config, ctx, prefix=f"{stage.name}: ")
        if stage.job == "train":
            produced.add(export_dir(stage.config.name))
        elif stage.job == "concepts":
            produced.add(POOL_DIR)
    return pools


def _offers(resources: dict[str, float], bundle: dict[str, float], times: int = 1) -> bool:
    return all(resources.get(name, 0.0) >= amount * times for name, amount in bundle.items())


def _autoscaling() -> bool:
    """Whether an autoscaler may still add nodes (KubeRay worker groups with minReplicas 0).

    A cluster started with `ray start` or `ray.init()` runs the read-only provider, whose
    node types are the nodes' own ids (`node_<hex>`); a KubeRay or cloud autoscaler names
    its worker groups. Unknown (an internal API moved) reads as "fixed": the strict answer.
    """
    try:
        from ray.autoscaler.v2.utils import is_autoscaler_v2
        from ray.experimental.internal_kv import _internal_kv_get

        if is_autoscaler_v2():
            return True
        status = json.loads(_internal_kv_get("__autoscaling_status", namespace=None) or "{}")
        types = (status.get("autoscaler_report", {}).get("node_type_mapping") or {}).values()
        return any(not str(name).startswith("node_") for name in types)
    except Exception:  # internal APIs: any failure means "cannot tell"
        return False


def fits(pool: Pool, nodes: list[dict[str, float]], total: dict[str, float]) -> bool:
    """Whether the nodes can host one replica now: STRICT_PACK needs all its bundles on one
    node; otherwise each bundle on some node and all of them within the cluster's total."""
    if pool.strategy == "STRICT_PACK":
        return any(_offers(n, pool.bundle, pool.count) for n in nodes)
    return any(_offers(n, pool.bundle) for n in nodes) and _offers(total, pool.bundle, pool.count)


def _offered(nodes: list[dict[str, float]], pool: Pool) -> list[dict[str, float]]:
    """What each node offers of the resources the pool asks for (CPU and GPU always)."""
    names = {"CPU", "GPU", *pool.bundle}
    return [{k: v for k, v in n.items() if k in names} for n in nodes]


def check_cluster(pools: list[Pool], fixed: bool = False, wait_s: float = 900.0) -> None:
    """Fail naming the pool and what it asked for when the cluster cannot host it. `fixed`:
    the cluster is this process's own local Ray (no autoscaler can add a node). On an
    autoscaling cluster one replica's placement group is asked for and waited on for
    `wait_s`: the request makes the autoscaler add a node, and a pool no node group can
    ever host fails then, instead of a job that waits forever."""
    import ray

    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    total = ray.cluster_resources()
    for pool in pools:
        if fits(pool, nodes, total):
            continue
        message = (
            f"{pool.key}: asks for {pool.asked} ({pool.why}), but the Ray cluster's nodes "
            f"offer {_offered(nodes, pool)}"
        )
        if not fixed and _autoscaling():
            logger.warning("%s; waiting up to %.0f s for the autoscaler", message, wait_s)
            if _placement_ready(pool, wait_s):
                continue
            message += f", and the autoscaler added no node for it within {wait_s:.0f} s"
        if "GPU" in pool.bundle:
            fix = "set device: cpu (or use_gpu: false) or join a cluster with GPUs (ray.address)"
        else:
            fix = "ask for less"
        custom = sorted(set(pool.bundle) - {"CPU", "GPU"})
        if custom:
            fix += f", or start nodes with --resources for {custom} (or unset node_resource)"
        raise ClusterError(f"{message}; {fix}")


def _placement_ready(pool: Pool, wait_s: float) -> bool:
    """Ask for one replica's bundles as a placement group; whether it was placed in time."""
    from ray.util.placement_group import placement_group, remove_placement_group

    group = placement_group([dict(pool.bundle) for _ in range(pool.count)], pool.strategy)
    try:
        return bool(group.wait(timeout_seconds=wait_s))
    finally:
        remove_placement_group(group)  # the engine pool asks for its own
