.PHONY: setup demo test lint

setup:            ## make .venv from scratch (CPU torch first, then the project)
	bash scripts/setup.sh

demo: setup       ## the README's main command: the synthesize job on the embedded default
	.venv/bin/promptcot-ray make-tiny-model .cache/tiny-llama
	.venv/bin/promptcot-ray synthesize --config jobs/configs/local.yaml

test:             ## the README's test command
	.venv/bin/python -m pytest

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .
