"""A pool's placement on a real Ray cluster: the request the preflight waits on when an
autoscaler might add a node, answered by Ray's own scheduler."""

from __future__ import annotations

import time

import pytest

from promptcot_ray.preflight import Pool, _placement_ready

pytestmark = [pytest.mark.integration]


def test_a_bundle_no_node_offers_is_not_placed_and_is_given_back(ray_cluster):
    from ray.util import placement_group_table

    judge = Pool("judges.0.llm", {"CPU": 1.0, "node_group_judge": 1.0}, 2, "test", "STRICT_PACK")
    started = time.monotonic()
    assert _placement_ready(judge, 2.0) is False
    assert 2.0 <= time.monotonic() - started < 30  # waited its time, then answered
    assert _placement_ready(Pool("generator", {"CPU": 1.0}, 2, "test", "STRICT_PACK"), 30.0)
    states = {g["state"] for g in placement_group_table().values()}
    assert states <= {"REMOVED"}, states  # neither request keeps resources the job needs
