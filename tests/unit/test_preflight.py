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


def test_autoscaling_cluster_warns_instead(cluster, tmp_path, caplog):
    cluster(CPU_NODES, autoscaling=True)
    with caplog.at_level(logging.WARNING):
        check_cluster(_pools(tmp_path, device="gpu"), fixed=False)
    assert "waiting for the autoscaler" in caplog.text
    with pytest.raises(ClusterError):  # our own local Ray never grows
        check_cluster(_pools(tmp_path, device="gpu"), fixed=True)
