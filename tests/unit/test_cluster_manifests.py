"""The deployment files under cluster/ and infra/ as a reviewer would check them, offline.

- Every YAML under cluster/ and jobs/configs/ parses; the plain Kubernetes objects, and every
  Ray pod template wrapped as a Pod, validate against the Kubernetes schemas.
- RayCluster and RayJobs carry what KubeRay and these docs promise: autoscaling groups, a
  CPU-only head, GPU requests equal to limits, the token from a Secret file, IRSA.
- The RayJobs are exactly what cluster/kuberay/render.py writes.
- The launcher config validates against Ray's own schema; the local scripts are valid bash.
- checkov (open source, no API key) finds no failed check in cluster/, infra/ and the pod
  templates. Without an API key every result has severity None, so no severity threshold
  can be used: the test requires zero failed checks, and every skip sits inline next to
  the resource it concerns with its justification (a `checkov.io/skipN` annotation or a
  `#checkov:skip=ID:reason` comment). checkov lives in its own venv (.venv-checkov, made by
  scripts/setup.sh); without it these tests skip, or fail when CI is set.
The Terraform's content (bucket hardening, policy scope) is checked in test_terraform.py.
"""

from __future__ import annotations

import importlib.util
import json
import os
import runpy
import shlex
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from promptcot_ray.submission.runtime_env import is_secret_name

REPO = Path(__file__).resolve().parents[2]
KUBERAY = REPO / "cluster" / "kuberay"
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
K8S_VERSION = "1.33.0"  # schemas shipped by kubernetes-validate; 1.33+ clusters accept these
TOKEN_PATH_VAR = "RAY_AUTH_TOKEN_PATH"
# What a KubeRay worker group needs for autoscaling (ray.io/v1 WorkerGroupSpec).
WORKER_GROUP_FIELDS = frozenset(
    ("groupName", "replicas", "minReplicas", "maxReplicas", "rayStartParams", "template")
)


# --- loading ------------------------------------------------------------------------------


def yaml_files() -> list[Path]:
    files = sorted({*REPO.glob("cluster/**/*.yaml"), *REPO.glob("jobs/configs/**/*.yaml")})
    assert files
    return files


@cache
def documents(path: Path) -> tuple[Any, ...]:
    with path.open() as f:
        return tuple(doc for doc in yaml.safe_load_all(f) if doc is not None)


def kuberay_objects(kind: str) -> list[tuple[Path, dict[str, Any]]]:
    return [
        (path, doc)
        for path in sorted(KUBERAY.glob("*.yaml"))
        for doc in documents(path)
        if isinstance(doc, dict) and doc.get("kind") == kind
    ]


def cluster_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"] if obj["kind"] == "RayCluster" else obj["spec"]["rayClusterSpec"]


def pod_templates(obj: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(role, pod template) for the head, each worker group and a RayJob's submitter."""
    spec = cluster_spec(obj)
    found = [("head", spec["headGroupSpec"]["template"])]
    found += [(group["groupName"], group["template"]) for group in spec["workerGroupSpecs"]]
    if obj["kind"] == "RayJob":
        found.append(("submitter", obj["spec"]["submitterPodTemplate"]))
    return found


def ray_objects() -> list[tuple[Path, dict[str, Any]]]:
    return kuberay_objects("RayCluster") + kuberay_objects("RayJob")


def as_pod(obj: dict[str, Any], role: str, template: dict[str, Any]) -> dict[str, Any]:
    name = f"{obj['metadata']['name']}-{role}"
    metadata = {**template.get("metadata", {}), "name": name}
    metadata["namespace"] = obj["metadata"]["namespace"]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]}


def all_pods() -> list[dict[str, Any]]:
    return [
        as_pod(obj, role, template)
        for _, obj in ray_objects()
        for role, template in pod_templates(obj)
    ]


# --- YAML and Kubernetes schemas ----------------------------------------------------------


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_yaml_parses(path):
    assert documents(path), f"{path} holds no YAML document"


def test_plain_kubernetes_objects_validate_strictly():
    objects = [doc for path in sorted(KUBERAY.glob("*.yaml")) for doc in documents(path)]
    # values.yaml (render.py's input) is no Kubernetes object; RayCluster/RayJob are CRDs.
    plain = [doc for doc in objects if "kind" in doc and doc["apiVersion"] != "ray.io/v1"]
    assert {doc["kind"] for doc in plain} >= {"ServiceAccount", "NetworkPolicy"}
    for doc in plain:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        assert doc["metadata"].get("namespace"), f"{doc['kind']} without a namespace"


def test_every_ray_pod_template_is_a_valid_pod():
    pods = all_pods()
    assert len(pods) >= 4 * len(kuberay_objects("RayJob"))
    for pod in pods:
        kubernetes_validate.validate(pod, K8S_VERSION, strict=True)


# --- RayCluster and RayJobs ----------------------------------------------------------------


def test_ray_cluster_layout():
    [(_, cluster)] = kuberay_objects("RayCluster")
    spec = cluster["spec"]
    assert cluster["apiVersion"] == "ray.io/v1"
    assert spec["rayVersion"] == "2.60.0"
    assert spec["enableInTreeAutoscaling"] is True
    head = spec["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"
    assert head["serviceType"] == "ClusterIP" and head["enableIngress"] is False
    groups = {group["groupName"]: group for group in spec["workerGroupSpecs"]}
    assert set(groups) == {"generator", "judge", "cpu"}
    for group in groups.values():
        assert set(group) >= WORKER_GROUP_FIELDS, group["groupName"]
        assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
    assert gpus(groups["generator"]) == 1 and gpus(groups["judge"]) == 8
    assert gpus(groups["cpu"]) == 0  # sampling, quality, labelling, tokenising


def gpus(group: dict[str, Any]) -> int:
    [container] = group["template"]["spec"]["containers"]
    return int(container["resources"]["limits"].get("nvidia.com/gpu", 0))


GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def test_gpu_workers_schedule_on_tainted_gpu_nodes_only():
    """GPU groups tolerate the GPU taint; the CPU group does not, so it never takes a GPU node."""
    for _, obj in ray_objects():
        for group in cluster_spec(obj)["workerGroupSpecs"]:
            spec = group["template"]["spec"]
            assert spec.get("nodeSelector") or spec.get("affinity", {}).get("nodeAffinity")
            tolerated = GPU_TOLERATION in spec.get("tolerations", [])
            assert tolerated is (gpus(group) > 0), group["groupName"]


def test_every_container_requests_what_it_is_limited_to():
    for pod in all_pods():
        for container in pod["spec"]["containers"]:
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["limits"]), container["name"]
            assert resources["requests"] == resources["limits"], pod["metadata"]["name"]


def test_pods_are_hardened_and_use_the_project_service_accounts():
    for pod in all_pods():
        spec, name = pod["spec"], pod["metadata"]["name"]
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        for container in spec["containers"]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["capabilities"]["drop"] == ["ALL"], name
            assert ":" in container["image"] and not container["image"].endswith(":latest")
        head = name.endswith("-head")
        assert spec["automountServiceAccountToken"] is head, name
        expected = "promptcot-ray-submitter" if name.endswith("-submitter") else "promptcot-ray"
        assert spec["serviceAccountName"] == expected, name


def test_ray_pods_get_dev_shm_in_memory():
    for pod in all_pods():
        if pod["metadata"]["name"].endswith("-submitter"):
            continue
        volumes = {volume["name"]: volume for volume in pod["spec"]["volumes"]}
        assert volumes["dshm"]["emptyDir"]["medium"] == "Memory"
        [container] = pod["spec"]["containers"]
        assert {"name": "dshm", "mountPath": "/dev/shm"} in container["volumeMounts"]


def test_the_auth_token_comes_from_a_secret_file():
    for pod in all_pods():
        secrets = {
            volume["name"]: volume["secret"]["secretName"]
            for volume in pod["spec"]["volumes"]
            if "secret" in volume
        }
        for container in pod["spec"]["containers"]:
            env = {var["name"]: var for var in container["env"]}
            assert env["RAY_AUTH_MODE"]["value"] == "token"
            assert "RAY_AUTH_TOKEN" not in env, "the token must not be an inline env value"
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            token_dir = os.path.dirname(env[TOKEN_PATH_VAR]["value"])
            assert secrets.get(mounts.get(token_dir)) == "promptcot-ray-auth"
    for _, obj in ray_objects():
        assert cluster_spec(obj)["authOptions"] == {
            "mode": "token",
            "secretName": "promptcot-ray-auth",
        }


def test_service_account_is_annotated_for_irsa():
    accounts = {doc["metadata"]["name"]: doc for _, doc in kuberay_objects("ServiceAccount")}
    role = accounts["promptcot-ray"]["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert role.startswith("arn:aws:iam::") and ":role/" in role
    assert "annotations" not in accounts["promptcot-ray-submitter"]["metadata"]


def test_rayjobs_run_a_job_entrypoint_on_a_copy_of_the_cluster():
    [(_, cluster)] = kuberay_objects("RayCluster")
    jobs = kuberay_objects("RayJob")
    assert len(jobs) >= 8
    for path, job in jobs:
        spec = job["spec"]
        assert spec["submissionMode"] == "K8sJobMode", path.name
        assert spec["shutdownAfterJobFinishes"] is True
        assert spec["ttlSecondsAfterFinished"] > 0 and spec["activeDeadlineSeconds"] > 0
        assert spec["backoffLimit"] >= 1
        assert spec["rayClusterSpec"] == cluster["spec"], f"{path.name}: re-run render.py"
        argv = shlex.split(spec["entrypoint"])
        assert argv[:2] == ["python", argv[1]] and argv[2] == "--config"
        assert (REPO / argv[1]).is_file(), f"{path.name}: no entrypoint script {argv[1]}"
        assert (REPO / argv[3]).is_file(), f"{path.name}: no config {argv[3]}"


def test_rayjob_configs_load_with_their_overrides():
    """What `promptcot-ray submit` checks before sending: the config and --set keys are valid."""
    from promptcot_ray.config import load_config
    from promptcot_ray.job_configs import JOB_CONFIGS

    for path, job in kuberay_objects("RayJob"):
        argv = shlex.split(job["spec"]["entrypoint"])
        name = Path(argv[1]).stem
        pairs = zip(argv[4::2], argv[5::2], strict=True)
        overrides = [value for flag, value in pairs if flag == "--set"]
        config = load_config(JOB_CONFIGS[name], REPO / argv[3], overrides)
        assert config.storage.run_dir.startswith("s3://"), path.name


def test_rayjob_runtime_env_fetches_code_from_s3_installs_nothing_and_holds_no_secret():
    for path, job in kuberay_objects("RayJob"):
        env = yaml.safe_load(job["spec"]["runtimeEnvYAML"])
        assert env["working_dir"].startswith("s3://") and env["working_dir"].endswith(".zip")
        assert "pip" not in env, f"{path.name}: the project's image already has the project"
        assert env["env_vars"]["AWS_REGION"]
        leaked = [name for name in env["env_vars"] if is_secret_name(name)]
        assert not leaked, f"{path.name}: secret-looking env_vars {leaked}"


def test_checked_in_rayjobs_are_what_render_writes():
    render = runpy.run_path(str(KUBERAY / "render.py"), run_name="kuberay_render")
    rendered = render["render_all"]()
    on_disk = set(KUBERAY.glob("rayjob-*.yaml"))
    assert on_disk == set(rendered), "stale or extra rayjob files: run render.py"
    stale = [p.name for p, text in rendered.items() if p.read_text() != text]
    assert not stale, f"run `python cluster/kuberay/render.py`: {stale} differ"


# --- Ray cluster launcher and the local scripts -------------------------------------------


def test_aws_launcher_config_matches_rays_schema():
    ray_dir = Path(importlib.util.find_spec("ray").origin).parent  # no `import ray`
    schema = json.loads((ray_dir / "autoscaler" / "ray-schema.json").read_text())
    [config] = documents(REPO / "cluster" / "aws" / "cluster.yaml")
    jsonschema.validate(config, schema)
    types = config["available_node_types"]
    assert types[config["head_node_type"]]["resources"] == {"CPU": 0}
    for node_type in types.values():
        assert "IamInstanceProfile" in node_type["node_config"]
    for command in config["head_start_ray_commands"] + config["worker_start_ray_commands"]:
        assert "RAY_AUTH_TOKEN=" not in command
    starts = [c for c in config["head_start_ray_commands"] if "ray start" in c]
    assert starts and all("RAY_AUTH_MODE=token" in c for c in starts)


@pytest.mark.parametrize("script", ["start.sh", "stop.sh"])
def test_local_cluster_scripts_are_valid_bash_and_never_ray_stop(script):
    path = REPO / "cluster" / "local" / script
    subprocess.run(["bash", "-n", str(path)], check=True)
    code = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
    assert not any("ray stop" in line for line in code)


# --- checkov ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkov_reports(tmp_path_factory) -> list[dict[str, Any]]:
    """One checkov run over cluster/, infra/ and the Ray pod templates written out as Pods
    (checkov does not look inside RayCluster/RayJob), next to the NetworkPolicy that selects
    them. Frameworks: kubernetes, terraform and secrets (which catches credentials such as
    AWS keys; an inlined Ray token is caught by test_the_auth_token_comes_from_a_secret_file)."""
    if not CHECKOV.exists():
        reason = f"{CHECKOV.relative_to(REPO)} missing: run scripts/setup.sh"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    pods_dir = tmp_path_factory.mktemp("pods")
    shutil.copy(KUBERAY / "networkpolicy.yaml", pods_dir)
    seen = set()
    for pod in all_pods():
        key = json.dumps(pod["spec"], sort_keys=True)
        if key not in seen:
            seen.add(key)
            (pods_dir / f"{pod['metadata']['name']}.yaml").write_text(yaml.safe_dump(pod))
    command = [str(CHECKOV), "-d", "cluster", "-d", "infra", "-d", str(pods_dir)]
    command += ["--framework", "kubernetes", "terraform", "secrets", "-o", "json", "--compact"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    reports = json_documents(done.stdout)
    assert reports, done.stderr[-3000:]
    return reports


def json_documents(text: str) -> list[dict[str, Any]]:
    """checkov prints one JSON value per directory (an object or a list of them)."""
    decoder, index, found = json.JSONDecoder(), 0, []
    while index < len(text.rstrip()):
        while text[index].isspace():
            index += 1
        value, index = decoder.raw_decode(text, index)
        found += value if isinstance(value, list) else [value]
    return found


def test_checkov_finds_no_failed_check(checkov_reports):
    failed = [
        f"{check['check_id']} {check['resource']} ({check['file_path']}): {check['check_name']}"
        for report in checkov_reports
        for check in report["results"]["failed_checks"]
    ]
    assert not failed, "\n".join(failed)
    assert all(report["summary"]["parsing_errors"] == 0 for report in checkov_reports)
    types = {report["check_type"] for report in checkov_reports}
    assert {"kubernetes", "terraform"} <= types
    assert sum(report["summary"]["passed"] for report in checkov_reports) > 300


def test_every_checkov_skip_is_justified(checkov_reports):
    skipped = [check for report in checkov_reports for check in report["results"]["skipped_checks"]]
    assert skipped
    for check in skipped:
        reason = check["check_result"].get("suppress_comment", "")
        assert len(reason) > 20 and reason != "No comment provided", check["check_id"]
