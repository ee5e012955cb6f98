.PHONY: setup demo test lint

setup:            ## make .venv from scratch (CPU torch first, then the project)
	bash scripts/setup.sh

demo: setup       ## the README's main command: the whole pipeline on the embedded default
	.venv/bin/promptcot-ray make-tiny-model .cache/tiny-llama-formats --teach-formats 500
	.venv/bin/promptcot-ray pipeline --config jobs/configs/pipeline-local.yaml

test:             ## the README's test command
	.venv/bin/python -m pytest

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .
