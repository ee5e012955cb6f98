"""Engine pools and placement (issue #16): autoscaling pools, tensor-parallel replicas on one
node, pools pinned to the node group the cluster manifests declare for them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from promptcot_ray.config import LLMConfig, load_config
from promptcot_ray.llm.engine import placement_group_config
from promptcot_ray.synthesis.config import SynthesizeConfig

REPO = Path(__file__).resolve().parents[2]
SYNTH_400K = REPO / "jobs/configs/400k/synthesize.yaml"


def test_a_tensor_parallel_replica_is_strictly_packed_on_one_node():
    judge = LLMConfig(model="m", tensor_parallel_size=4, node_resource="node_group_judge")
    pg = placement_group_config(judge)
    assert pg["strategy"] == "STRICT_PACK"
    assert pg["bundles"] == [{"GPU": 1, "CPU": 1, "node_group_judge": 1}] * 4
    assert placement_group_config(LLMConfig(model="m"))["strategy"] == "PACK"
    assert placement_group_config(LLMConfig(model="m", device="cpu"))["bundles"] == [{"CPU": 1}]


def test_replicas_take_a_fixed_size_or_a_min_max_range():
    assert LLMConfig(model="m", replicas=[2, 8]).replicas == (2, 8)
    assert LLMConfig(model="m", replicas=[2, 8]).max_replicas == 8
    assert LLMConfig(model="m", replicas=3).max_replicas == 3
    for bad in ([8, 2], [0, 4], 0):
        with pytest.raises(ValidationError, match="replicas"):
            LLMConfig(model="m", replicas=bad)


def _kuberay_groups() -> dict[str, tuple[dict, int]]:
    """groupName -> (declared custom resources, GPUs per pod)."""
    spec = yaml.safe_load((REPO / "cluster/kuberay/raycluster.yaml").read_text())["spec"]
    out = {}
    for group in spec["workerGroupSpecs"]:
        raw = group["rayStartParams"].get("resources")
        declared = json.loads(json.loads(raw)) if raw else {}
        pod = group["template"]["spec"]["containers"][0]["resources"]["limits"]
        out[group["groupName"]] = (declared, int(pod.get("nvidia.com/gpu", 0)))
    return out


def test_every_pinned_pool_of_the_400k_round_has_a_node_group_that_declares_it():
    cfg = load_config(SynthesizeConfig, SYNTH_400K)
    pools = {"generator": cfg.generator, **{j.name: j.llm for j in cfg.judges}}
    kuberay = _kuberay_groups()
    launcher = yaml.safe_load((REPO / "cluster/aws/cluster.yaml").read_text())
    launcher = launcher["available_node_types"]
    for name, llm in pools.items():
        assert llm.node_resource, f"pool {name} is not pinned to a node group"
        groups = [g for g, (declared, _) in kuberay.items() if llm.node_resource in declared]
        assert len(groups) == 1, (name, llm.node_resource, kuberay)
        declared, gpus = kuberay[groups[0]]
        # one unit per GPU: the group holds as many bundles as it has GPUs, and a TP replica fits
        assert declared[llm.node_resource] == gpus >= llm.tensor_parallel_size
        node_types = [t for t, v in launcher.items() if llm.node_resource in v["resources"]]
        assert node_types == groups, (name, node_types)
    assert cfg.judges[0].llm.replicas == (4, 20)  # an autoscaling judge pool
