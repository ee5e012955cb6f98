"""The model a rehearsal trains: the tiny offline Llama, built once into the run directory.

A rehearsal must not need the base model's weights (a CPU cluster may not hold or fit
them), yet the train job's real code (tokenising every row, DeepSpeed, checkpoints, export)
must run. The tiny model loads through exactly that code; keeping it in the run directory
lets every worker of a cluster read it the way it reads `run:` models.
"""

from __future__ import annotations

import logging
import tempfile

from promptcot_ray.storage import RunDir

logger = logging.getLogger(__name__)

TINY_MODEL_DIR = "rehearsal/tiny-model"


def tiny_model_uri(run: RunDir) -> str:
    """The run directory's tiny model, built on first use (seeded: the same every time)."""

    from promptcot_ray.llm.tiny_model import build_tiny_model

    if not run.is_complete(TINY_MODEL_DIR):
        with tempfile.TemporaryDirectory() as folder:
            build_tiny_model(folder, seed=0)
            run.upload_dir(folder, TINY_MODEL_DIR)
        run.mark_complete(TINY_MODEL_DIR, {"builder": "promptcot_ray.llm.tiny_model", "seed": 0})
        logger.info("rehearsal: tiny model written to %s", run.uri_of(TINY_MODEL_DIR))
    return run.uri_of(TINY_MODEL_DIR)
