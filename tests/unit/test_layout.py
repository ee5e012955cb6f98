"""The run directory is named in one module: no other module spells a run-directory path.

A path spelled twice drifts (the review behind issue #13 found `synthesis/round-{k}` in six
places, two SEEDS_DIR constants and a folder found by `split("/")[2]`); this scans every
module's string literals and f-strings for one.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from promptcot_ray import layout

PACKAGE = Path(__file__).resolve().parents[2] / "promptcot_ray"
TOP = "concepts|rationales|synthesis|pipeline|quality|problems|problems-removed|distill|models|"
TOP += "eval|report|logs"
RUN_PATH = re.compile(rf"^({TOP})/\S*$")  # prose (help texts, messages) has spaces


def _run_paths(source: str) -> list[tuple[int, str]]:
    tree = ast.parse(source)
    fstrings = [n for n in ast.walk(tree) if isinstance(n, ast.JoinedStr)]
    inside_fstring = {id(v) for n in fstrings for v in n.values}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr) and node.values:
            head = node.values[0]
            if isinstance(head, ast.Constant) and RUN_PATH.match(str(head.value) + "x"):
                found.append((node.lineno, ast.unparse(node)))
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in inside_fstring
            and RUN_PATH.match(node.value)
        ):
            found.append((node.lineno, node.value))
    return found


def test_no_module_but_layout_spells_a_run_directory_path():
    spelled = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {text}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "layout.py"
        for line, text in _run_paths(path.read_text())
    ]
    assert not spelled, "use promptcot_ray.layout instead:\n" + "\n".join(spelled)


def test_the_scan_finds_the_spellings_it_is_for():
    source = (
        'a = "synthesis/round-0/accepted"\nb = f"synthesis/round-{k}"\nc = f"models/{n}/final"\n'
    )
    source += 'd = "the concepts/pool folder is missing"\ne = "concepts"\n'
    assert [line for line, _ in _run_paths(source)] == [1, 2, 3]


def test_round_folders_are_read_back_by_their_index():
    assert layout.round_part(12, "accepted") == "synthesis/round-12/accepted"
    assert layout.round_index(layout.round_dir(12).rsplit("/", 1)[1]) == 12
    for other in ("round-", "round-x", "round-1.parquet", "rounds-1", "_SUCCESS.json"):
        assert layout.round_index(other) is None, other
