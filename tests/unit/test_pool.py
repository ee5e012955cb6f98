"""Concept normalisation, pool building, Arrow round trip, hashed embedding, list files."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from scipy import sparse

from promptcot_ray.concepts.normalize import clean_concept, normalize_concept
from promptcot_ray.concepts.pool import (
    CONCEPTS_TABLE,
    COOCCURRENCE_TABLE,
    VERSION_METADATA_KEY,
    ConceptPool,
    build_pool,
    default_concept_lists_path,
    hashed_embedding,
    load_concept_lists,
    make_pool,
    parse_concept_lists,
    pool_from_tables,
    pool_to_tables,
)
from promptcot_ray.records import LEVELS


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("Pigeonhole principle", "pigeonhole principle"),
        ("  PIGEONHOLE   principle.  ", "pigeonhole principle"),
        ("1. Vieta's Formulas.", "vieta's formulas"),
        ("- Power of a point theorem;", "power of a point theorem"),
        ("\u2022 Fermat's little theorem", "fermat's little theorem"),
        ("(3) Linearity of expectation", "linearity of expectation"),
        ('"Chinese remainder theorem"', "chinese remainder theorem"),
        ("\u201cAM-GM inequality.\u201d", "am-gm inequality"),
        ("'Double counting'", "double counting"),
        ("**Inclusion-exclusion principle**", "inclusion-exclusion principle"),
        ("Menelaus' theorem", "menelaus' theorem"),
        ("\uff21\uff2d-\uff27\uff2d inequality", "am-gm inequality"),  # full-width, NFKC
        ("Stra\u00dfe lemma", "strasse lemma"),  # casefold, not lower
        (
            "Law of cosines (c^2 = a^2 + b^2 - 2ab cos C)",
            "law of cosines (c^2 = a^2 + b^2 - 2ab cos c)",
        ),
        ("R(3,3) = 6", "r(3,3) = 6"),
        ("  ...  ", ""),
    ],
)
def test_normalize_concept(raw: str, key: str) -> None:
    assert normalize_concept(raw) == key


def test_clean_concept_keeps_case_and_spelling() -> None:
    assert clean_concept("2) Vieta's Formulas.") == "Vieta's Formulas"
    assert clean_concept("x-intercepts of a line") == "x-intercepts of a line"


def _embed_calls() -> tuple[list[list[str]], object]:
    calls: list[list[str]] = []

    def embed(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        return hashed_embedding(texts, dim=16) * 3.0  # unnormalised on purpose

    return calls, embed


def test_build_pool_counts_and_cooccurrence() -> None:
    lists = [["A", "B", "C"], ["a.", "B", "1. A"], ["B", "C", "D"], ["A"]]
    calls, embed = _embed_calls()
    pool = build_pool(lists, embed)
    assert pool.concepts == ("A", "B", "C", "D")
    assert calls == [["A", "B", "C", "D"]]  # embedded once, in id order
    assert pool.frequency.tolist() == [3, 3, 2, 1]  # "a." and "1. A" repeat A in list 1
    expected = np.array([[0, 2, 1, 0], [2, 0, 2, 1], [1, 2, 0, 1], [0, 1, 1, 0]])
    np.testing.assert_array_equal(pool.cooccurrence.toarray(), expected)
    assert pool.cooccurrence.dtype == np.int64
    np.testing.assert_allclose(np.linalg.norm(pool.embeddings, axis=1), 1.0, rtol=1e-6)
    assert pool.embeddings.dtype == np.float32 and pool.dim == 16


def test_build_pool_dedupes_on_normalised_key_keeping_first_spelling() -> None:
    pool = build_pool(
        [
            ["- Vieta's formulas.", "Pigeonhole principle"],
            ["VIETA'S FORMULAS", "pigeonhole principle"],
        ],
        hashed_embedding,
    )
    assert pool.concepts == ("Vieta's formulas", "Pigeonhole principle")
    assert pool.frequency.tolist() == [2, 2]
    assert pool.cooccurrence[0, 1] == 2


def test_build_pool_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="no non-empty concept"):
        build_pool([[], ["  ", "."]], hashed_embedding)
    with pytest.raises(TypeError, match="is a string"):
        build_pool(["Pigeonhole principle"], hashed_embedding)
    with pytest.raises(ValueError, match=r"expected \(2, d\)"):
        build_pool([["A", "B"]], lambda texts: np.ones((3, 4)))
    with pytest.raises(ValueError, match="zero vector"):
        build_pool([["A", "B"]], lambda texts: np.array([[1.0, 0.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="non-finite"):
        build_pool([["A"]], lambda texts: np.array([[np.nan, 1.0]]))


def _tiny_pool() -> ConceptPool:
    lists = [["A", "B", "C"], ["A", "B"], ["B", "C", "D"], ["A", "E"]]
    return build_pool(lists, lambda texts: hashed_embedding(texts, dim=8))


def test_pool_version_is_a_content_hash() -> None:
    pool, again = _tiny_pool(), _tiny_pool()
    assert pool.version == again.version and pool == again and hash(pool) == hash(again)
    other = make_pool(pool.concepts, pool.frequency + 1, pool.embeddings, pool.cooccurrence)
    assert other.version != pool.version
    with pytest.raises(ValueError, match="content hash"):
        ConceptPool(pool.concepts, pool.frequency, pool.embeddings, pool.cooccurrence, "x" * 20)


def test_pool_parts_are_read_only() -> None:
    pool = _tiny_pool()
    with pytest.raises(ValueError, match="read-only"):
        pool.frequency[0] = 7
    with pytest.raises(ValueError, match="read-only"):
        pool.embeddings[0, 0] = 1.0


def test_make_pool_validates() -> None:
    pool = _tiny_pool()
    asym = pool.cooccurrence.toarray()
    asym[0, 1] += 1
    with pytest.raises(ValueError, match="symmetric"):
        make_pool(pool.concepts, pool.frequency, pool.embeddings, asym)
    diag = pool.cooccurrence.toarray() + np.eye(pool.size, dtype=np.int64)
    with pytest.raises(ValueError, match="diagonal"):
        make_pool(pool.concepts, pool.frequency, pool.embeddings, diag)
    with pytest.raises(ValueError, match="L2-normalised"):
        make_pool(pool.concepts, pool.frequency, pool.embeddings * 2, pool.cooccurrence)
    with pytest.raises(ValueError, match="disagree"):
        make_pool(pool.concepts[:-1], pool.frequency, pool.embeddings, pool.cooccurrence)


def test_pool_table_round_trip_is_exact() -> None:
    pool = _tiny_pool()
    tables = pool_to_tables(pool)
    concepts, cooc = tables[CONCEPTS_TABLE], tables[COOCCURRENCE_TABLE]
    assert concepts.schema.field("concept_id").type == pa.int32()
    assert concepts.schema.field("embedding").type == pa.list_(pa.float32(), pool.dim)
    assert cooc.schema.field("count").type == pa.int32()
    assert (cooc.column("row").to_numpy() < cooc.column("col").to_numpy()).all()  # upper
    assert cooc.num_rows == pool.cooccurrence.nnz // 2
    assert concepts.schema.metadata[VERSION_METADATA_KEY] == pool.version.encode()

    back = pool_from_tables(tables)
    assert back.version == pool.version and back.concepts == pool.concepts
    np.testing.assert_array_equal(back.frequency, pool.frequency)
    assert back.embeddings.tobytes() == pool.embeddings.tobytes()
    assert (back.cooccurrence != pool.cooccurrence).nnz == 0


def test_pool_from_tables_rejects_changed_content() -> None:
    tables = pool_to_tables(_tiny_pool())
    concepts = tables[CONCEPTS_TABLE]
    texts = concepts.column("text").to_pylist()
    texts[0] = "Changed"
    changed = concepts.set_column(1, "text", pa.array(texts)).replace_schema_metadata(
        concepts.schema.metadata
    )
    with pytest.raises(ValueError, match="content hashes"):
        pool_from_tables({**tables, CONCEPTS_TABLE: changed})
    with pytest.raises(ValueError, match="missing"):
        pool_from_tables({CONCEPTS_TABLE: concepts})


def test_pool_to_tables_refuses_counts_beyond_int32() -> None:
    pool = _tiny_pool()
    huge = sparse.csr_matrix(pool.cooccurrence, dtype=np.int64) * 2**31
    big = make_pool(pool.concepts, pool.frequency, pool.embeddings, huge)
    with pytest.raises(ValueError, match="exceeds int32"):
        pool_to_tables(big)


def test_hashed_embedding() -> None:
    texts = [
        "Vieta's formulas",
        "1. vieta's formulas.",
        "Vieta's formulas for cubics",
        "Pick's theorem",
    ]
    emb = hashed_embedding(texts, dim=64)
    assert emb.shape == (4, 64) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(emb, hashed_embedding(texts, dim=64))  # deterministic
    np.testing.assert_array_equal(emb[0], emb[1])  # same normalised key
    assert emb[0] @ emb[2] > emb[0] @ emb[3] + 0.3
    assert np.linalg.norm(hashed_embedding([""], dim=4)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="dim"):
        hashed_embedding(["x"], dim=0)


def test_builtin_concept_lists_build_a_pool() -> None:
    path = default_concept_lists_path()
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert 250 <= len(rows) <= 400
    assert len({r["id"] for r in rows}) == len(rows)
    assert all(r["level"] in LEVELS and len(r["concepts"]) == 5 for r in rows)
    lists = load_concept_lists(path)
    assert lists == [r["concepts"] for r in rows]
    pool = build_pool(lists, hashed_embedding)
    assert 150 <= pool.size <= 250
    assert pool.cooccurrence.nnz > 0 and pool.frequency.max() > 5  # some concepts recur


def test_parse_concept_lists_reports_the_line() -> None:
    assert parse_concept_lists(['{"concepts": ["A", "B"]}', "", '{"concepts": []}']) == [
        ["A", "B"],
        [],
    ]
    with pytest.raises(ValueError, match=r"f\.jsonl line 2"):
        parse_concept_lists(['{"concepts": ["A"]}', '{"problem": "x"}'], "f.jsonl")
    with pytest.raises(ValueError, match="line 1: `concepts` must be a list of strings"):
        parse_concept_lists(['{"concepts": "A"}'])
