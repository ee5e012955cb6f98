"""The sink's schema conformance, including Ray Data's pickled-object fallback columns."""

from __future__ import annotations

import pyarrow as pa
import pytest
from ray.data._internal.object_extensions.arrow import ArrowPythonObjectArray

from promptcot_ray.sinks import conform

SCHEMA = pa.schema([("id", pa.string()), ("parent_ids", pa.list_(pa.string()))])


def test_conform_selects_and_casts():
    table = pa.table({"parent_ids": [["a"], []], "id": ["x", "y"], "extra": [1, 2]})
    out = conform(table, SCHEMA)
    assert out.schema == SCHEMA and out.column("id").to_pylist() == ["x", "y"]


def test_conform_rebuilds_pickled_object_columns():
    """Ray falls back to pickled objects when a block holds untypeable values (vLLM
    logprob dicts keyed by int); a plain cast of such a list column fails."""
    objects = ArrowPythonObjectArray.from_objects([["a", "b"], None])
    table = pa.table({"id": ["x", "y"], "parent_ids": objects})
    out = conform(table, SCHEMA)
    assert out.column("parent_ids").to_pylist() == [["a", "b"], None]


def test_conform_missing_column_is_a_bug():
    with pytest.raises(KeyError, match="parent_ids"):
        conform(pa.table({"id": ["x"]}), SCHEMA)
