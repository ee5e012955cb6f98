"""The dataset card (README.md) of an export, generated from the run directory.

It says what made the data (models, prompt versions, every resolved config the run froze),
how much survived each step (the funnel and accept rate per synthesis round from
ledger.jsonl, falling back to each round's stats.json), which benchmarks it was
decontaminated against, and what the rows hold (levels, counts, lineage columns). The YAML
header is the Hub's dataset-card metadata, so `load_dataset(REPO)` finds the data files.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import yaml

from promptcot_ray import layout
from promptcot_ray.ledger import read_ledger
from promptcot_ray.storage import RunDir

CONFIG_FILES = (
    layout.config_file(layout.PIPELINE),
    layout.config_file(layout.CONCEPTS),
    layout.config_file(layout.RATIONALES),
    layout.CONFIG_FILE,  # every synthesize round, merged
    layout.config_file(layout.QUALITY),
    layout.config_file(layout.DISTILL),
)
LINEAGE_DOC = {
    "id": "content-derived id (re-runs make the same ids)",
    "parent_ids": "ids of the rows this one was made from (combination, judgements, ...)",
    "stage": "the stage that wrote the row",
    "model": "the model that generated it",
    "prompt_version": "version of the prompt template used",
    "seed": "sampling seed",
    "sample_index": "which sample of its parent",
    "created_at": "UTC creation time",
}


@dataclass
class CardFacts:
    """What the card states, gathered from the run (tested without rendering)."""

    run_uri: str
    fmt: str
    rows: int
    data_files: str  # glob of the exported files, relative to the export folder
    source: str  # problems (after the gates) or accepted
    final_problems: int
    levels: dict[str, int] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)
    prompt_versions: list[str] = field(default_factory=list)
    funnel: list[dict[str, Any]] = field(default_factory=list)
    decontamination: dict[str, Any] = field(default_factory=dict)
    configs: dict[str, str] = field(default_factory=dict)
    columns: list[str] = field(default_factory=list)


def value_counts(column: pa.ChunkedArray) -> dict[str, int]:
    counts = pc.value_counts(column.combine_chunks())
    pairs = zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True)
    return dict(sorted((str(k), v) for k, v in pairs))


def funnel(run: RunDir) -> list[dict[str, Any]]:
    """Per synthesis round: combinations, parsed drafts, accepted and the accept rate."""
    rounds: dict[int, dict[str, Any]] = {}
    for line in read_ledger(run):
        rnd = (line.get("extra") or {}).get("round")
        if line["job"] != "synthesize" or rnd is None:
            continue
        entry = rounds.setdefault(rnd, {"round": rnd})
        if line["stage"] == "total":
            entry.update(combinations=line["rows_in"], accepted=line["rows_out"])
        elif line["stage"] == "generate":
            entry["parsed"] = line["rows_out"]
    # rounds the ledger lacks: one listing of the round folders (not of every results file
    # under synthesis/), and only those rounds' stats.json read
    found = (layout.round_index(d) for d in run.list_dirs(layout.SYNTHESIS))
    for rnd in sorted(k for k in found if k is not None and k not in rounds):
        rel = layout.round_part(rnd, "stats.json")
        total = run.read_json(rel).get("total") if run.exists(rel) else None
        if total:
            rounds[rnd] = {"round": rnd, "combinations": total["rows_in"]}
            rounds[rnd]["accepted"] = total["rows_out"]
    for entry in rounds.values():
        if entry.get("combinations"):
            entry["accept_rate"] = entry.get("accepted", 0) / entry["combinations"]
    return [rounds[k] for k in sorted(rounds)]


def models(configs: dict[str, str]) -> dict[str, str]:
    """Role -> model, from the frozen configs."""
    found: dict[str, str] = {}
    synth = yaml.safe_load(configs.get("config.yaml", "")) or {}
    if synth.get("generator"):
        found["generator"] = synth["generator"]["model"]
    for judge in synth.get("judges") or []:
        found[f"judge {judge['name']}"] = judge["llm"]["model"]
    distill = yaml.safe_load(configs.get(layout.config_file(layout.DISTILL), "")) or {}
    if distill.get("teacher"):
        found["teacher (pseudo-labels)"] = distill["teacher"]["model"]
    return found


def decontamination(run: RunDir, configs: dict[str, str]) -> dict[str, Any]:
    """The quality gates' settings and what they removed (ledger), if they ran."""
    quality = yaml.safe_load(configs.get(layout.config_file(layout.QUALITY), "")) or {}
    removed = next((x["rejected"] for x in read_ledger(run) if x["job"] == "quality"), None)
    if not quality and removed is None:
        return {}
    return {
        "benchmarks": [b.get("path") or b.get("hf_dataset") for b in quality.get("benchmarks", [])],
        "benchmark_names": [b["name"] for b in quality.get("benchmarks", [])],
        "ngram": quality.get("ngram"),
        "check_seeds": quality.get("check_seeds"),
        "minhash_threshold": quality.get("minhash_threshold"),
        "removed": removed or {},
    }


def frozen_configs(run: RunDir) -> dict[str, str]:
    names = [*CONFIG_FILES, *(f for f in run.list_files("models", "config.yaml"))]
    return {name: run.read_text(name) for name in names if run.exists(name)}


def render(facts: CardFacts) -> str:
    """README.md text: Hub metadata header, then the facts as Markdown."""
    header = {
        "pretty_name": f"promptcot-ray export ({facts.fmt})",
        "tags": ["math", "synthetic", "promptcot", facts.fmt],
        "task_categories": ["text-generation"],
        "size_categories": [_size_category(facts.rows)],
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": "train", "path": facts.data_files}],
            }
        ],
    }
    out = ["---", yaml.safe_dump(header, sort_keys=False).rstrip(), "---", ""]
    out += [f"# promptcot-ray export: `{facts.fmt}`", ""]
    where = (
        "problems/ after the quality gates"
        if facts.source == "problems"
        else "every round's accepted/ (no quality gates ran)"
    )
    out += [
        f"{facts.rows} rows exported from run `{facts.run_uri}` "
        f"({facts.final_problems} final problems, read from {where}).",
        "",
        "## What made it",
        "",
        *(f"- {role}: `{model}`" for role, model in facts.models.items()),
        f"- prompt versions: {', '.join(f'`{v}`' for v in facts.prompt_versions) or 'unknown'}",
        "",
        "## Funnel",
        "",
        "| round | combinations | parsed drafts | accepted | accept rate |",
        "|---:|---:|---:|---:|---:|",
        *(_funnel_row(e) for e in facts.funnel),
        "",
    ]
    out += _decontamination_lines(facts.decontamination)
    out += ["## Levels of the final problems", "", "| level | problems |", "|---|---:|"]
    out += [f"| {k} | {v} |" for k, v in facts.levels.items()] + [""]
    out += ["## Columns", "", ", ".join(f"`{c}`" for c in facts.columns), ""]
    out += ["Lineage columns (on every problem):", ""]
    out += [f"- `{k}`: {v}" for k, v in LINEAGE_DOC.items()] + ["", "## Configs", ""]
    for name, text in facts.configs.items():
        out += [f"<details><summary>{name}</summary>", "", "```yaml", text.rstrip(), "```"]
        out += ["", "</details>", ""]
    return "\n".join(out)


def _funnel_row(e: dict[str, Any]) -> str:
    rate = f"{100 * e['accept_rate']:.1f}%" if "accept_rate" in e else "—"
    cells = [e.get(k, "—") for k in ("combinations", "parsed", "accepted")]
    return f"| {e['round']} | " + " | ".join(str(c) for c in cells) + f" | {rate} |"


def _decontamination_lines(d: dict[str, Any]) -> list[str]:
    if not d:
        return ["## Decontamination", "", "No quality gates ran on this run.", ""]
    sets = ", ".join(
        f"{n} (`{s}`)" for n, s in zip(d["benchmark_names"], d["benchmarks"], strict=True)
    )
    removed = ", ".join(f"{k}: {v}" for k, v in sorted(d["removed"].items())) or "none"
    return [
        "## Decontamination",
        "",
        f"- benchmarks: {sets or 'none'}; {d['ngram']}-gram overlap"
        + ("; seed problems too" if d["check_seeds"] else ""),
        f"- near-duplicates: MinHash Jaccard >= {d['minhash_threshold']}",
        f"- removed: {removed}",
        "",
    ]


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if n < limit:
            return name
    return "100K<n<1M" if n < 1_000_000 else "n>1M"


def data_glob(folder: str, stem: str, ext: str) -> str:
    return posixpath.join(folder, f"{stem}-*.{ext}") if folder else f"{stem}-*.{ext}"
