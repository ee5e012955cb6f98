"""The cluster check: a pool no node can host fails naming the pool and what it asked for;
an autoscaling cluster gets a warning instead (its GPU groups may start at zero nodes)."""

from __future__ import annotations

import logging

import pytest

from promptcot_ray import preflight
from promptcot_ray.config import LLMConfig, StorageConfig
from promptcot_ray.preflight import ClusterError, Context, check_cluster, check_llm
from promptcot_ray.storage import RunDir

CPU_NODES = [
    {"Alive": True, "Resources": {"CPU": 8.0, "memory": 1e10}},
    {"Alive": False, "Resources": {"CPU": 8.0, "GPU": 8.0}},  # a dead node offers nothing
]


@pytest.fixture
def cluster(monkeypatch):
    import ray

    def use(nodes, autoscaling=False):
        alive = [n["Resources"] for n in nodes if n["Alive"]]
        total = {k: sum(r.get(k, 0) for r in alive) for r in alive for k in r}
        monkeypatch.setattr(ray, "nodes", lambda: nodes)
        monkeypatch.setattr(ray, "cluster_resources", lambda: total)
        monkeypatch.setattr(preflight, "_autoscaling", lambda: autoscaling)

    return use


def _pools(tmp_path, **llm):
    cfg = LLMConfig(model="org/model", **llm)  # a hub name: no files to check
    return check_llm("judges.0.llm", cfg, Context(RunDir(str(tmp_path)), StorageConfig()))


def test_gpu_pool_on_a_cpu_cluster_names_the_pool_and_resources(cluster, tmp_path):
    cluster(CPU_NODES)
    with pytest.raises(ClusterError) as refused:
        check_cluster(_pools(tmp_path, device="gpu"), fixed=True)
    message = str(refused.value)
    assert message.startswith("judges.0.llm: asks for 1 x {'GPU': 1.0, 'CPU': 1.0}")
    assert "device: gpu" in message and "[{'CPU': 8.0}]" in message
    assert "device: cpu" in message  # the fix


def test_tensor_parallel_wider_than_the_cluster_is_refused(cluster, tmp_path):
    cluster([{"Alive": True, "Resources": {"CPU": 16.0, "GPU": 2.0}}])
    check_cluster(_pools(tmp_path, device="gpu", tensor_parallel_size=2), fixed=True)
    with pytest.raises(ClusterError, match="asks for 4 x"):
        check_cluster(_pools(tmp_path, device="gpu", tensor_parallel_size=4), fixed=True)


def test_cpu_pool_fits_and_openai_asks_for_nothing(cluster, tmp_path):
    cluster(CPU_NODES)
    check_cluster(_pools(tmp_path, device="cpu"), fixed=True)
    assert _pools(tmp_path, engine="openai", base_url="http://h/v1") == []


def test_autoscaling_cluster_waits_for_a_node_then_goes_on(cluster, tmp_path, caplog, monkeypatch):
    cluster(CPU_NODES, autoscaling=True)
    asked = []
    monkeypatch.setattr(preflight, "_placement_ready", lambda pool, s: asked.append(s) or True)
    with caplog.at_level(logging.WARNING):
        check_cluster(_pools(tmp_path, device="gpu"), fixed=False, wait_s=30)
    assert "waiting up to 30 s for the autoscaler" in caplog.text and asked == [30]
    with pytest.raises(ClusterError):  # our own local Ray never grows
        check_cluster(_pools(tmp_path, device="gpu"), fixed=True)


def test_a_pool_the_autoscaler_never_places_fails_naming_it(cluster, tmp_path, monkeypatch):
    """Not a hang: the placement request times out and the message says what was asked."""
    cluster(CPU_NODES, autoscaling=True)
    monkeypatch.setattr(preflight, "_placement_ready", lambda pool, s: False)
    pools = _pools(tmp_path, device="gpu", tensor_parallel_size=4, node_resource="node_group_judge")
    with pytest.raises(ClusterError) as refused:
        check_cluster(pools, fixed=False, wait_s=5)
    message = str(refused.value)
    assert message.startswith("judges.0.llm: asks for 4 x {'GPU': 1.0, 'CPU': 1.0, ")
    assert "'node_group_judge': 1.0} on one node" in message
    assert "node_resource: node_group_judge" in message and "within 5 s" in message
    assert "--resources for ['node_group_judge']" in message


def test_tensor_parallel_bundles_must_share_one_node(cluster, tmp_path):
    """Two 2-GPU nodes hold 4 GPUs, but a TP-4 replica is STRICT_PACK: it needs one node."""
    cluster([{"Alive": True, "Resources": {"CPU": 16.0, "GPU": 2.0}}] * 2)
    check_cluster(_pools(tmp_path, device="gpu", tensor_parallel_size=2), fixed=True)
    with pytest.raises(ClusterError, match="on one node"):
        check_cluster(_pools(tmp_path, device="gpu", tensor_parallel_size=4), fixed=True)


def test_a_pool_pinned_to_a_node_group_needs_a_node_with_its_resource(cluster, tmp_path):
    plain = {"Alive": True, "Resources": {"CPU": 16.0, "GPU": 8.0}}
    cluster([plain])
    pools = _pools(tmp_path, device="gpu", node_resource="node_group_judge")
    with pytest.raises(ClusterError, match="node_group_judge"):
        check_cluster(pools, fixed=True)
    cluster([plain, {"Alive": True, "Resources": {**plain["Resources"], "node_group_judge": 8}}])
    check_cluster(pools, fixed=True)
