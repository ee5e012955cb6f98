# The cluster image: promptcot-ray and its `gpu` extra (vLLM with CUDA, torch 2.13.0) on the
# Ray 2.60 GPU image. The KubeRay manifests (cluster/kuberay/) and the EC2 launcher config
# (cluster/aws/cluster.yaml) run it on every node, so no job pip-installs anything at start and
# `promptcot-ray submit` sends no install step by default (--install is for clusters on the
# plain Ray image). Build from the repository root and push where the nodes pull from:
#   docker build -t REGISTRY/promptcot-ray:0.1.0 .
#   docker push REGISTRY/promptcot-ray:0.1.0
# then set that name in cluster/kuberay/raycluster.yaml (and re-render) and cluster/aws/.
# Jobs still upload the repository as their working_dir, so edited configs and code reach the
# cluster without a rebuild; the image supplies the installed dependencies.
FROM rayproject/ray:2.60.0-py311-gpu

# The base image's non-root `ray` user (UID 1000, group users/100), by number, as the pod security contexts
# in the manifests require; its HOME holds the Python environment pip installs into.
USER 1000:100
WORKDIR /home/ray/promptcot-ray

# Metadata and the package source only: changing a test or a doc keeps the dependency layer.
COPY --chown=1000:100 pyproject.toml README.md ./
COPY --chown=1000:100 promptcot_ray ./promptcot_ray

# The project itself is a local path, so it has no version to pin (DL3013); its dependencies
# are pinned in pyproject.toml (torch==2.13.0, vllm==0.32.0, ray==2.60.0, transformers<5.20).
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".[gpu,tracking]" \
    && python -c "import promptcot_ray.cli, vllm, ray; assert ray.__version__ == '2.60.0'"

# Jobs, configs and scripts, for `ray job submit` from inside the cluster (RayJob submitters
# run `python jobs/<job>.py`) and for `kubectl exec` sessions on the head.
COPY --chown=1000:100 jobs ./jobs
COPY --chown=1000:100 cluster ./cluster

# Marks a process as running inside this image (README, cluster/README.md); the jobs' own
# behaviour does not depend on it.
ENV PROMPTCOT_RAY_IMAGE=0.1.0
