"""Import direction: no circles, stages do not import each other, nothing imports upward.

Issue #13's layers: core (records, storage, layout, catalog, schemas, markers, ledger, ...)
<- llm <- prompts, parsing <- stages (one package per job; `solve/` shared by distill and
evaluate) <- app (cli, pipeline, report, plan, export, submission, ...). The imports that
still break that rule are listed below, each with why; the list must stay exact, so a new
one fails here and a fixed one must be struck off.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "promptcot_ray"
STAGES = {"concepts", "rationales", "synthesis", "quality", "distill", "evaluate", "train"}
APP = {"pipeline", "report", "plan", "export", "submission", "staging", "tracking", "cli"}
APP |= {"cli_errors", "datasets_command", "job_configs"}

KNOWN = {
    # rationales are written from the concepts job's extracted rows (read_extracted)
    ("rationales", "concepts"): {"promptcot_ray.rationales.job"},
    # the concept pool and its sampler are synthesize's input types
    ("synthesis", "concepts"): {
        "promptcot_ray.synthesis.combinations",
        "promptcot_ray.synthesis.pool_source",
        "promptcot_ray.synthesis.quota_combinations",
    },
    # synthesize can run the quality gates after its round (a config switch)
    ("synthesis", "quality"): {"promptcot_ray.synthesis.config", "promptcot_ray.synthesis.job"},
    # format tuning (a devtools fixture) and rehearsal replies build concept lists
    ("llm", "concepts"): {"promptcot_ray.llm.format_tuning", "promptcot_ray.llm.rehearsal_replies"},
    # preflight checks every job's config before any engine starts
    ("preflight", "concepts"): {"promptcot_ray.preflight"},
    ("preflight", "distill"): {"promptcot_ray.preflight"},
    ("preflight", "evaluate"): {"promptcot_ray.preflight"},
    ("preflight", "pipeline"): {"promptcot_ray.preflight"},
    ("preflight", "quality"): {"promptcot_ray.preflight"},
    ("preflight", "synthesis"): {"promptcot_ray.preflight"},
    ("preflight", "train"): {"promptcot_ray.preflight"},
    # rehearsal caps training steps; the end-of-job tables print a round's counts
    ("rehearsal", "train"): {"promptcot_ray.rehearsal"},
    ("summary", "synthesis"): {"promptcot_ray.summary"},
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def _imports(tree: ast.AST, modules: dict[str, Path], module_level: bool) -> set[str]:
    nodes = tree.body if module_level else list(ast.walk(tree))
    out = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("promptcot_ray"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                out.add(full if full in modules else node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("promptcot_ray")}
    return out


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _violations(edges: dict[str, set[str]]) -> dict[tuple[str, str], set[str]]:
    found: dict[tuple[str, str], set[str]] = defaultdict(set)
    for module, targets in edges.items():
        src = _top(module)
        for dst in map(_top, targets):
            sideways = src in STAGES and dst in STAGES and src != dst
            upward = src not in STAGES | APP and dst in STAGES | APP
            if sideways or upward:
                found[(src, dst)].add(module)
    return dict(found)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while (w := stack.pop()) != v:
                part.append(w)
            if part:
                out.append(sorted([v, *part]))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def _graph(module_level: bool) -> dict[str, set[str]]:
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        targets = _imports(ast.parse(path.read_text()), modules, module_level)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def test_no_module_level_import_circle():
    assert _cycles(_graph(module_level=True)) == []


def test_no_stage_imports_another_and_nothing_imports_upward_but_the_known_few():
    found = _violations(_graph(module_level=False))
    new = {k: v - KNOWN.get(k, set()) for k, v in found.items() if v - KNOWN.get(k, set())}
    gone = {k: v - found.get(k, set()) for k, v in KNOWN.items() if v - found.get(k, set())}
    assert not new, f"imports against the layers (fix them, or list them with why): {new}"
    assert not gone, f"fixed, strike them off KNOWN: {gone}"


def test_the_checks_find_what_they_are_for():
    graph = {"promptcot_ray.a": {"promptcot_ray.b"}, "promptcot_ray.b": {"promptcot_ray.a"}}
    assert _cycles(graph) == [["promptcot_ray.a", "promptcot_ray.b"]]
    edges = {
        "promptcot_ray.distill.job": {"promptcot_ray.quality.job", "promptcot_ray.records"},
        "promptcot_ray.storage": {"promptcot_ray.report.job"},
        "promptcot_ray.report.job": {"promptcot_ray.synthesis.outputs"},
    }
    assert _violations(edges) == {
        ("distill", "quality"): {"promptcot_ray.distill.job"},
        ("storage", "report"): {"promptcot_ray.storage"},
    }
