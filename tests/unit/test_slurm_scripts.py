"""cluster/slurm/ as a reviewer checks it without a Slurm cluster: valid bash, shellcheck-clean,
and a dry run (fake `scontrol`, PROMPTCOT_SLURM_DRY_RUN=1) that prints exactly the steps a
real allocation would get: one Ray head on the first node, one worker per other node, all
with the allocation's token, then the command as a driver with RAY_ADDRESS set.

shellcheck comes from Debian's package (apt-get install shellcheck); without it that test
skips. A real run on one node with Debian's slurm-wlm is tests/manual/slurm_one_node.sh
(run by hand: it starts system daemons; see cluster/README.md for what it showed).
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SLURM = REPO / "cluster" / "slurm"
LAUNCHER = SLURM / "ray-cluster.sh"
SBATCH = SLURM / "promptcot-ray.sbatch"
NODES = ["gpu-a", "gpu-b", "gpu-c"]


@pytest.mark.parametrize("script", [LAUNCHER, SBATCH], ids=lambda p: p.name)
def test_scripts_are_valid_bash_and_never_ray_stop(script):
    subprocess.run(["bash", "-n", str(script)], check=True)
    code = [line for line in script.read_text().splitlines() if not line.lstrip().startswith("#")]
    assert not any("ray stop" in line for line in code)
    assert script.stat().st_mode & stat.S_IXUSR


def test_shellcheck_finds_nothing():
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck missing: apt-get install -y shellcheck")
    done = subprocess.run(
        [shellcheck, "-S", "style", str(LAUNCHER), str(SBATCH)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout


def dry_run(tmp_path: Path, *command: str, **env: str) -> subprocess.CompletedProcess:
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    scontrol = fake / "scontrol"
    scontrol.write_text(
        '#!/bin/sh\n[ "$1 $2" = "show hostnames" ] && printf "%s\\n" ' + " ".join(NODES) + "\n"
    )
    scontrol.chmod(0o755)
    environ = {
        "PATH": f"{fake}:{os.environ['PATH']}",
        "SLURM_JOB_ID": "42",
        "SLURM_JOB_NODELIST": "gpu-[a-c]",
        "SLURM_CPUS_ON_NODE": "64",
        "SLURM_GPUS_ON_NODE": "8",
        "PROMPTCOT_SLURM_DRY_RUN": "1",
        "PROMPTCOT_SLURM_STATE": str(tmp_path / "state"),
        **env,
    }
    return subprocess.run(
        ["bash", str(LAUNCHER), "--", *command],
        capture_output=True,
        text=True,
        env=environ,
        cwd=tmp_path,
        timeout=30,
    )


def steps(out: str) -> dict[str, list[str]]:
    return {
        line.split(":", 1)[0].removeprefix("step "): shlex.split(line.split(":", 1)[1])
        for line in out.splitlines()
        if line.startswith("step ")
    }


def test_dry_run_starts_one_head_and_a_worker_per_other_node(tmp_path):
    done = dry_run(tmp_path, "promptcot-ray", "synthesize", "--config", "my config.yaml")
    assert done.returncode == 0, done.stderr
    started = steps(done.stdout)
    assert list(started) == NODES
    token = tmp_path / "state" / "auth_token"
    for node, argv in started.items():
        assert argv[:6] == ["srun", "--nodes=1", "--ntasks=1", "--overlap", "-w", node]
        assert f"RAY_AUTH_TOKEN_PATH={token}" in argv and "RAY_AUTH_MODE=token" in argv
        assert "--block" in argv and "--num-gpus=8" in argv and "--num-cpus=64" in argv
        assert "--temp-dir=/tmp/ray-slurm-42" in argv
    assert "--head" in started["gpu-a"] and "--dashboard-host=127.0.0.1" in started["gpu-a"]
    for worker in NODES[1:]:
        assert "--address=gpu-a:6379" in started[worker] and "--head" not in started[worker]
    [driver] = [line for line in done.stdout.splitlines() if line.startswith("driver:")]
    assert shlex.split(driver.removeprefix("driver:")) == [
        "RAY_ADDRESS=gpu-a:6379",
        "promptcot-ray",
        "synthesize",
        "--config",
        "my config.yaml",
    ]
    # the token lives in a directory only the user can open, and dies with the allocation
    assert stat.S_IMODE(token.parent.stat().st_mode) == 0o700
    assert not token.exists()


def test_a_container_image_goes_to_every_step(tmp_path):
    done = dry_run(
        tmp_path, "promptcot-ray", "pipeline", PROMPTCOT_SLURM_CONTAINER="reg/promptcot-ray:0.1.0"
    )
    assert done.returncode == 0, done.stderr
    for argv in steps(done.stdout).values():
        assert "--container-image=reg/promptcot-ray:0.1.0" in argv


def test_outside_an_allocation_it_says_so(tmp_path):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    done = subprocess.run(
        ["bash", str(LAUNCHER), "--", "true"], capture_output=True, text=True, env=environ
    )
    assert done.returncode == 2 and "not inside a Slurm allocation" in done.stderr
    done = subprocess.run(["bash", str(LAUNCHER), "true"], capture_output=True, text=True)
    assert done.returncode == 2 and "usage" in done.stderr


def test_sbatch_template_asks_for_whole_gpu_nodes_and_runs_the_launcher():
    text = SBATCH.read_text()
    directives = dict(
        line.removeprefix("#SBATCH ").split("=", 1)
        for line in text.splitlines()
        if line.startswith("#SBATCH --") and "=" in line
    )
    assert directives["--ntasks-per-node"] == "1" and int(directives["--gpus-per-node"]) == 8
    assert "#SBATCH --exclusive" in text and "#SBATCH --requeue" in text
    assert (
        'exec bash cluster/slurm/ray-cluster.sh -- "${PROMPTCOT_RAY:-.venv/bin/promptcot-ray}" "$@"'
        in text
    )
