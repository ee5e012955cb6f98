"""Per-batch work of the quality gates: hashes, bucket keys, n-gram hits, signatures.

Each function takes and returns a pyarrow table of rows, so the same code runs inside Ray
Data `map_batches` (the quality job) or on one batch in a process (tests, other stages).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from promptcot_ray import records as R
from promptcot_ray.quality.decontam import NgramIndex, first_hits
from promptcot_ray.quality.minhash import MinHasher, band_keys, exact_keys, lsh_bands
from promptcot_ray.quality.normalize import (
    batch_word_hashes,
    hash64,
    normalize_text,
    words_of_normalized,
)

PROBLEM = "problem"
FEATURES_SCHEMA = pa.schema(
    [
        (R.ID, pa.string()),
        ("text_hash", pa.uint64()),
        ("keys", pa.list_(pa.uint64())),
        ("hit_source", pa.string()),
        ("hit_item", pa.string()),
        ("hit_ngram", pa.string()),
        ("signature", pa.binary()),  # MinHash signature (uint32 bytes); empty without words
    ]
)
BUCKET_SCHEMA = pa.schema(
    [
        ("key", pa.uint64()),
        (R.ID, pa.string()),
        ("text_hash", pa.uint64()),
        ("part", pa.int64()),  # key % partitions: buckets are found inside each partition
    ]
)


class ComputeFeatures:
    """Row -> exact hash, bucket keys (exact + LSH bands) and first benchmark/seed n-gram hit."""

    input_columns = (R.ID, PROBLEM)
    output_columns = tuple(FEATURES_SCHEMA.names)

    def __init__(
        self, num_perm: int, shingle: int, threshold: float, index: NgramIndex | None
    ) -> None:
        self.minhasher = MinHasher(num_perm, shingle)
        self.bands, self.rows = lsh_bands(threshold, num_perm)
        self.index = index

    def __call__(self, batch: pa.Table) -> pa.Table:
        normalized = [normalize_text(p) for p in batch[PROBLEM].to_pylist()]
        word_lists = [words_of_normalized(t) for t in normalized]
        hashes = np.fromiter((hash64(t) for t in normalized), np.uint64, len(normalized))
        sigs, has_sig = self.minhasher.batch_signatures(*batch_word_hashes(word_lists))
        band_iter = iter(band_keys(sigs, self.bands, self.rows).tolist())
        # A row without words (no shingles) has only its exact key.
        keys = [
            [k, *(next(band_iter) if ok else [])]
            for k, ok in zip(exact_keys(hashes).tolist(), has_sig.tolist(), strict=True)
        ]
        hits = first_hits(self.index, word_lists) if self.index else [None] * len(word_lists)
        columns = {
            R.ID: batch[R.ID],
            "text_hash": pa.array(hashes, pa.uint64()),
            "keys": pa.array(keys, pa.list_(pa.uint64())),
            "hit_source": [h.source if h else None for h in hits],
            "hit_item": [h.item_id if h else None for h in hits],
            "hit_ngram": [h.ngram if h else None for h in hits],
            "signature": pa.array(_sparse_signatures(sigs, has_sig), pa.binary()),
        }
        return pa.Table.from_pydict(columns, schema=FEATURES_SCHEMA)


def explode_keys(batch: pa.Table, partitions: int = 1) -> pa.Table:
    """One (key, id, text_hash, part) row per bucket key of each clean (not contaminated) row."""
    clean = batch.filter(pc.is_null(batch["hit_source"]))
    counts = pc.list_value_length(clean["keys"]).to_numpy(zero_copy_only=False)
    take = np.repeat(np.arange(clean.num_rows), counts)
    keys = pc.list_flatten(clean["keys"]).cast(pa.uint64())
    part = (keys.to_numpy(zero_copy_only=False) % np.uint64(partitions)).astype(np.int64)
    return pa.Table.from_arrays(
        [keys, clean[R.ID].take(take), clean["text_hash"].take(take), pa.array(part)],
        schema=BUCKET_SCHEMA,
    )


def signatures_of(batch: pa.Table, ids: pa.Array) -> pa.Table:
    """(id, signature) of the rows named in `ids` (the endpoints of candidate pairs)."""
    rows = batch.filter(pc.is_in(batch[R.ID], value_set=ids))
    return rows.select([R.ID, "signature"])


def hits_only(batch: pa.Table) -> pa.Table:
    """Rows that overlap a benchmark or seed n-gram (small: the contaminated rows)."""
    return batch.filter(pc.is_valid(batch["hit_source"])).drop_columns(["keys", "signature"])


def _sparse_signatures(sigs: np.ndarray, has_sig: np.ndarray) -> list[bytes]:
    """Signature bytes per row when `sigs` holds rows with words only (in order)."""
    it = iter(sigs)
    return [next(it).tobytes() if ok else b"" for ok in has_sig.tolist()]
