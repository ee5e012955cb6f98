"""SFT rows -> a Ray dataset of token ids and labels, tokenised in parallel on the cluster.

The same batch function runs twice: once returning only per-row outcomes (cheap to collect:
the driver needs the counts for the ledger and the step count for the LR schedule), then
lazily as the trainer's input, so the tokenised corpus never has to sit whole in memory.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from promptcot_ray.config import StorageConfig
from promptcot_ray.train.config import TrainConfig
from promptcot_ray.train.examples import TRUNCATED, Encoded, encode, pack

BATCH_ROWS = 256  # rows per tokenisation batch (and per packing window)
TOKEN_SCHEMA = pa.schema([("input_ids", pa.list_(pa.int32())), ("labels", pa.list_(pa.int32()))])
PACKED_SCHEMA = TOKEN_SCHEMA.append(pa.field("position_ids", pa.list_(pa.int32())))


class TokenizeBatch:
    """Ray Data callable: prompt/completion rows -> training sequences (or their outcomes)."""

    def __init__(self, model_uri: str, train: dict[str, Any], outcomes_only: bool) -> None:
        from transformers import AutoTokenizer

        from promptcot_ray.model_paths import local_model_dir

        self.cfg = TrainConfig.model_validate(train)
        storage: StorageConfig = self.cfg.storage
        self.tokenizer = AutoTokenizer.from_pretrained(local_model_dir(model_uri, storage))
        self.outcomes_only = outcomes_only

    def __call__(self, batch: pa.Table) -> pa.Table:
        cfg = self.cfg
        prompts = batch.column(cfg.data.prompt_column).to_pylist()
        completions = batch.column(cfg.data.completion_column).to_pylist()
        # generator rows say how their prompt is rendered (rationales' prompt_format column)
        raw = [False] * len(prompts)
        if "prompt_format" in batch.column_names:
            raw = [f == "raw" for f in batch.column("prompt_format").to_pylist()]
        results = [
            encode(self.tokenizer, p, c, cfg.max_length, cfg.overflow, r)
            for p, c, r in zip(prompts, completions, raw, strict=True)
        ]
        kept = [r for r in results if isinstance(r, Encoded)]
        sequences = pack(kept, cfg.max_length) if cfg.packing else None
        if self.outcomes_only:
            return _outcomes(results, len(sequences) if sequences is not None else len(kept))
        if sequences is not None:
            return pa.Table.from_pylist(sequences, schema=PACKED_SCHEMA)
        rows = [{"input_ids": r.input_ids, "labels": r.labels} for r in kept]
        return pa.Table.from_pylist(rows, schema=TOKEN_SCHEMA)


def _outcomes(results: list[Encoded | str], sequences: int) -> pa.Table:
    """One row per input: its reason (None = trained on), tokens, and the batch's sequences."""
    reasons = [None if isinstance(r, Encoded) else r for r in results]
    truncated = [isinstance(r, Encoded) and r.truncated for r in results]
    tokens = [len(r.input_ids) if isinstance(r, Encoded) else 0 for r in results]
    per_row = [0] * len(results)
    if per_row:
        per_row[0] = sequences  # the batch's count, carried on its first row
    return pa.table(
        {
            "reason": pa.array(reasons, pa.string()),
            TRUNCATED: pa.array(truncated, pa.bool_()),
            "tokens": pa.array(tokens, pa.int64()),
            "sequences": pa.array(per_row, pa.int64()),
        }
    )


def tokenized(rows: pa.Table, model_uri: str, cfg: TrainConfig, outcomes_only: bool) -> Any:
    """The lazy Ray dataset of `rows` through TokenizeBatch (one small actor pool)."""
    import ray

    from promptcot_ray.llm_stage import HELPER_CPUS

    blocks = [rows.slice(i, BATCH_ROWS) for i in range(0, rows.num_rows, BATCH_ROWS)]
    return ray.data.from_arrow(blocks).map_batches(
        TokenizeBatch,
        fn_constructor_kwargs={
            "model_uri": model_uri,
            "train": cfg.model_dump(mode="json"),
            "outcomes_only": outcomes_only,
        },
        batch_size=BATCH_ROWS,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=cfg.ray.actor_pools.tokenising),
        num_cpus=HELPER_CPUS,
    )
