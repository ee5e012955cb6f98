"""The concept pool (method step 3): de-duplicated concepts, frequencies, embeddings, co-occurrence.

A pool is built once from per-problem concept lists and is then read-only. Concept id = row
index. The pool's `version` is a hash of its content, so a combination row can name the
exact pool it was drawn from, and a stored pool that was changed on disk fails to load.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import numpy as np
import pyarrow as pa
from scipy import sparse

from promptcot_ray.concepts.normalize import clean_concept, normalize_concept
from promptcot_ray.records import ID_HEX_CHARS

VERSION_METADATA_KEY = b"promptcot.pool_version"
CONCEPTS_TABLE = "concepts"
COOCCURRENCE_TABLE = "cooccurrence"
_NORM_TOLERANCE = 1e-4
_INT32_MAX = np.iinfo(np.int32).max


@dataclass(frozen=True, eq=False)
class ConceptPool:
    """The de-duplicated concepts of a corpus; build it with `build_pool` or `make_pool`.

    `frequency[i]` counts the lists containing concept i; `embeddings` has L2-normalised
    float32 rows; `cooccurrence` is a symmetric int64 CSR matrix with a zero diagonal whose
    (i, j) entry counts the lists containing both. Pools compare and hash by `version`.
    """

    concepts: tuple[str, ...]
    frequency: np.ndarray
    embeddings: np.ndarray
    cooccurrence: sparse.csr_matrix
    version: str

    def __post_init__(self) -> None:
        _check_pool(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ConceptPool) and other.version == self.version

    def __hash__(self) -> int:
        return hash(self.version)

    @property
    def size(self) -> int:
        """Number of concepts."""
        return len(self.concepts)

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return int(self.embeddings.shape[1])


def pool_version(
    concepts: Sequence[str],
    frequency: np.ndarray,
    embeddings: np.ndarray,
    cooccurrence: sparse.csr_matrix,
) -> str:
    """Content hash of a pool (texts, frequencies, embedding bytes, canonical CSR arrays)."""
    digest = hashlib.sha256()
    digest.update(json.dumps(list(concepts), ensure_ascii=False).encode("utf-8"))
    digest.update(np.ascontiguousarray(frequency, dtype="<i8").tobytes())
    digest.update(json.dumps(list(embeddings.shape)).encode("ascii"))
    digest.update(np.ascontiguousarray(embeddings, dtype="<f4").tobytes())
    for part in (cooccurrence.indptr, cooccurrence.indices, cooccurrence.data):
        digest.update(np.ascontiguousarray(part, dtype="<i8").tobytes())
    return digest.hexdigest()[:ID_HEX_CHARS]


def make_pool(
    concepts: Sequence[str],
    frequency: np.ndarray,
    embeddings: np.ndarray,
    cooccurrence: sparse.spmatrix | sparse.sparray | np.ndarray,
) -> ConceptPool:
    """Make a validated, read-only pool from its parts (copied) and compute its version.

    Raises ValueError if shapes disagree, embeddings are not unit rows, or the co-occurrence
    matrix is not symmetric, non-negative and zero on the diagonal.
    """
    frequency = np.array(frequency, dtype=np.int64)
    embeddings = np.array(embeddings, dtype=np.float32)
    cooc = sparse.csr_matrix(cooccurrence, dtype=np.int64, copy=True)
    cooc.sum_duplicates()
    cooc.eliminate_zeros()
    cooc.sort_indices()
    for array in (frequency, embeddings, cooc.data, cooc.indices, cooc.indptr):
        array.setflags(write=False)
    concepts = tuple(concepts)
    if len(concepts) != len(frequency) or len(concepts) != len(embeddings):
        raise ValueError(
            f"pool parts disagree: {len(concepts)} concepts, {len(frequency)} frequencies, "
            f"{len(embeddings)} embedding rows"
        )
    version = pool_version(concepts, frequency, embeddings, cooc)
    return ConceptPool(concepts, frequency, embeddings, cooc, version)


def _check_pool(pool: ConceptPool) -> None:
    n = len(pool.concepts)
    if not all(isinstance(c, str) and c for c in pool.concepts):
        raise ValueError("ConceptPool.concepts must be non-empty strings")
    if len(set(pool.concepts)) != n:
        raise ValueError("ConceptPool.concepts must be distinct")
    if pool.frequency.dtype != np.int64 or pool.frequency.shape != (n,):
        raise ValueError(f"ConceptPool.frequency must be int64 of shape ({n},)")
    if (pool.frequency < 0).any():
        raise ValueError("ConceptPool.frequency must be non-negative")
    emb = pool.embeddings
    if emb.dtype != np.float32 or emb.ndim != 2 or emb.shape[0] != n or emb.shape[1] < 1:
        raise ValueError(f"ConceptPool.embeddings must be float32 of shape ({n}, d), d >= 1")
    norms = np.linalg.norm(emb.astype(np.float64), axis=1)
    if not np.all(np.abs(norms - 1.0) <= _NORM_TOLERANCE):
        raise ValueError("ConceptPool.embeddings rows must be L2-normalised (finite, norm 1)")
    cooc = pool.cooccurrence
    if not sparse.issparse(cooc) or cooc.format != "csr" or cooc.shape != (n, n):
        raise ValueError(f"ConceptPool.cooccurrence must be a CSR matrix of shape ({n}, {n})")
    if cooc.dtype != np.int64 or not cooc.has_canonical_format:
        raise ValueError("ConceptPool.cooccurrence must be int64 in canonical form: use make_pool")
    if (cooc.data < 0).any() or cooc.diagonal().any() or (cooc != cooc.T).nnz:
        raise ValueError("ConceptPool.cooccurrence must be symmetric, >= 0, zero on the diagonal")
    expected = pool_version(pool.concepts, pool.frequency, emb, cooc)
    if pool.version != expected:
        raise ValueError(f"ConceptPool.version {pool.version!r} != content hash {expected!r}")


def build_pool(
    concept_lists: Sequence[Sequence[str]], embed: Callable[[list[str]], np.ndarray]
) -> ConceptPool:
    """Build the pool from per-problem concept lists: dedupe, count, embed, co-occurrence.

    Concepts are deduplicated on `normalize_concept` keys, within and across lists; a
    concept's text is the `clean_concept` form of its first occurrence. `embed` is called
    once with all concept texts in id order and must return an (n, d) array.
    """
    key_to_id: dict[str, int] = {}
    texts: list[str] = []
    list_idx: list[int] = []
    concept_idx: list[int] = []
    for li, items in enumerate(concept_lists):
        if isinstance(items, str):
            raise TypeError(f"concept list {li} is a string, expected a list of strings")
        seen: set[int] = set()
        for raw in items:
            if not isinstance(raw, str):
                raise TypeError(f"concept list {li} holds {type(raw).__name__}, not str")
            key = normalize_concept(raw)
            if not key:
                continue
            cid = key_to_id.setdefault(key, len(texts))
            if cid == len(texts):
                texts.append(clean_concept(raw))
            if cid not in seen:
                seen.add(cid)
                list_idx.append(li)
                concept_idx.append(cid)
    if not texts:
        raise ValueError("build_pool: the concept lists hold no non-empty concept")
    n = len(texts)
    # Incidence matrix (lists x concepts): column sums are frequencies, M^T M the co-occurrence.
    incidence = sparse.csr_matrix(
        (
            np.ones(len(concept_idx), np.int64),
            (np.array(list_idx), np.array(concept_idx)),
        ),
        shape=(len(concept_lists), n),
    )
    frequency = np.asarray(incidence.sum(axis=0), dtype=np.int64).ravel()
    cooc = (incidence.T @ incidence).tocsr()
    cooc.setdiag(0)  # every diagonal entry is stored (frequency >= 1), so no structure change
    return make_pool(texts, frequency, _embed_checked(embed, texts), cooc)


def _embed_checked(embed: Callable[[list[str]], np.ndarray], texts: list[str]) -> np.ndarray:
    vectors = np.asarray(embed(list(texts)), dtype=np.float64)
    if vectors.ndim != 2 or vectors.shape[0] != len(texts) or vectors.shape[1] < 1:
        raise ValueError(
            f"embed returned shape {vectors.shape} for {len(texts)} texts; "
            f"expected ({len(texts)}, d) with d >= 1"
        )
    if not np.isfinite(vectors).all():
        raise ValueError("embed returned non-finite values")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if (norms == 0).any():
        bad = texts[int(np.flatnonzero(norms[:, 0] == 0)[0])]
        raise ValueError(f"embed returned a zero vector (e.g. for {bad!r}); cannot normalise")
    return (vectors / norms).astype(np.float32)


def pool_to_tables(pool: ConceptPool) -> dict[str, pa.Table]:
    """The pool as Arrow tables; each carries the version in its schema metadata.

    "concepts": concept_id int32, text, frequency int64, embedding fixed_size_list<float32>.
    "cooccurrence": the upper triangle only (row < col), sorted, count int32.
    """
    if pool.cooccurrence.nnz and pool.cooccurrence.data.max() > _INT32_MAX:
        raise ValueError("a co-occurrence count exceeds int32, the stored count type")
    meta = {VERSION_METADATA_KEY: pool.version.encode("ascii")}
    flat = pa.array(pool.embeddings.reshape(-1), type=pa.float32())
    concepts = pa.table(
        {
            "concept_id": pa.array(np.arange(pool.size, dtype=np.int32)),
            "text": pa.array(pool.concepts, type=pa.string()),
            "frequency": pa.array(pool.frequency, type=pa.int64()),
            "embedding": pa.FixedSizeListArray.from_arrays(flat, pool.dim),
        }
    ).replace_schema_metadata(meta)
    upper = sparse.triu(pool.cooccurrence, k=1, format="coo")
    order = np.lexsort((upper.col, upper.row))
    cooc = pa.table(
        {
            "row": pa.array(upper.row[order].astype(np.int32)),
            "col": pa.array(upper.col[order].astype(np.int32)),
            "count": pa.array(upper.data[order].astype(np.int32)),
        }
    ).replace_schema_metadata(meta)
    return {CONCEPTS_TABLE: concepts, COOCCURRENCE_TABLE: cooc}


def pool_from_tables(tables: dict[str, pa.Table]) -> ConceptPool:
    """Rebuild a pool from `pool_to_tables` output; ValueError if it does not match its version."""
    missing = {CONCEPTS_TABLE, COOCCURRENCE_TABLE} - set(tables)
    if missing:
        raise ValueError(f"pool tables missing: {sorted(missing)}")
    concepts = tables[CONCEPTS_TABLE].combine_chunks()
    cooc = tables[COOCCURRENCE_TABLE].combine_chunks()
    if concepts.column("embedding").null_count or concepts.column("text").null_count:
        raise ValueError("pool concepts table has null texts or embeddings")
    n = concepts.num_rows
    if not np.array_equal(concepts.column("concept_id").to_numpy(), np.arange(n)):
        raise ValueError("pool concepts table: concept_id must be 0..n-1 in order")
    emb_col = concepts.column("embedding").chunk(0) if n else None
    dim = emb_col.type.list_size if n else concepts.schema.field("embedding").type.list_size
    emb = emb_col.flatten().to_numpy() if n else np.zeros(0, np.float32)
    rows, cols = cooc.column("row").to_numpy(), cooc.column("col").to_numpy()
    counts = cooc.column("count").to_numpy().astype(np.int64)
    upper = sparse.coo_matrix((counts, (rows, cols)), shape=(n, n))
    pool = make_pool(
        concepts.column("text").to_pylist(),
        concepts.column("frequency").to_numpy(),
        emb.reshape(n, dim),
        (upper + upper.T).tocsr(),
    )
    stored = (concepts.schema.metadata or {}).get(VERSION_METADATA_KEY, b"").decode("ascii")
    if stored != pool.version:
        raise ValueError(
            f"pool tables say version {stored!r} but their content hashes to "
            f"{pool.version!r}: the stored pool was changed or is incomplete"
        )
    return pool


# --- a model-free embedding ---------------------------------------------------------------
_WORD_RE = re.compile(r"\w+")


@lru_cache(maxsize=1 << 18)
def _feature_hash(feature: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest(), "little"
    )


def hashed_embedding(texts: Sequence[str], dim: int = 64) -> np.ndarray:
    """Deterministic bag-of-n-grams embedding: a cheap stand-in for a sentence-embedding model.

    Signed feature hashing (blake2b) of word unigrams and character trigrams of each text's
    normalised form, L2-normalised, float32 (len(texts), dim). For tests and tiny demos:
    texts sharing words embed close, but it knows no synonyms.
    """
    if dim < 1:
        raise ValueError(f"hashed_embedding: dim must be >= 1, got {dim}")
    out = np.zeros((len(texts), dim), np.float64)
    for row, text in enumerate(texts):
        key = normalize_concept(text)
        padded = f" {key} "
        features = [f"w:{w}" for w in _WORD_RE.findall(key)]
        features += [f"c:{padded[i : i + 3]}" for i in range(len(padded) - 2)]
        for feature in features:
            h = _feature_hash(feature)
            out[row, h % dim] += 1.0 if (h >> 63) & 1 else -1.0
        if not out[row].any():  # empty text, or every feature cancelled: a fixed unit vector
            out[row, _feature_hash(f"t:{key}") % dim] = 1.0
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out.astype(np.float32)


# --- concept-list files -------------------------------------------------------------------
def default_concept_lists_path() -> Traversable:
    """The project's own small concept-list file (JSONL), the local default pool source."""
    return resources.files("promptcot_ray").joinpath("data", "concept_lists.jsonl")


def parse_concept_lists(lines: Iterable[str], source: str = "<lines>") -> list[list[str]]:
    """Concept lists from JSONL lines, each an object with a `concepts` list of strings."""
    lists: list[list[str]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            concepts = json.loads(line)["concepts"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(
                f'{source} line {number}: expected {{"concepts": [...]}}: {exc}'
            ) from exc
        if not isinstance(concepts, list) or not all(isinstance(c, str) for c in concepts):
            raise ValueError(f"{source} line {number}: `concepts` must be a list of strings")
        lists.append(concepts)
    return lists


def load_concept_lists(path: str | os.PathLike[str] | Traversable) -> list[list[str]]:
    """Read a local concept-list JSONL file (see `parse_concept_lists`)."""
    target = Path(path) if isinstance(path, str | os.PathLike) else path
    with target.open("r", encoding="utf-8") as handle:
        return parse_concept_lists(handle, str(path))
