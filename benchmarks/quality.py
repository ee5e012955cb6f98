"""Quality gates at scale: planted duplicates and contamination, precision/recall, wall time.

Builds N synthetic problems (random words from a 6,000-word vocabulary, about 85 words
each) with planted exact duplicates (case/spacing changes), near-duplicates (one word
replaced or inserted) and contaminated items (a benchmark problem from tests/data/benchmarks
embedded after a lead-in, lightly reworded), writes them as a synthesize round, runs the
quality job on a local Ray and scores every removal type against what was planted.

    .venv/bin/python benchmarks/quality.py            # 400,000 problems
    .venv/bin/python benchmarks/quality.py --quick    # 20,000 problems
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa

from promptcot_ray import records as R
from promptcot_ray.quality.config import QualityConfig
from promptcot_ray.storage import RunDir
from promptcot_ray.table_schemas import ACCEPTED_SCHEMA

REPO = Path(__file__).resolve().parents[1]
BENCH_DIR = REPO / "tests" / "data" / "benchmarks"
RATES = {"exact": 0.02, "near": 0.03, "contaminated": 0.01}
TARGETS = {"seconds": 300.0, "recall": 0.95, "precision": 0.99}
REASON_OF = {
    "exact": R.REASON_EXACT_DUPLICATE,
    "near": R.REASON_NEAR_DUPLICATE,
    "contaminated": R.REASON_CONTAMINATED,
}


def _benchmarks() -> list[tuple[str, str, str]]:
    items = []
    for path in sorted(BENCH_DIR.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if len(row["problem"].split()) >= 30:  # room for a light edit and 13 clean words
                items.append((path.stem, row["id"], row["problem"]))
    return items


def _reword(text: str, rng: random.Random) -> str:
    """Light rewording: one word near the end replaced, spacing and case changed."""
    toks = text.split()
    toks[len(toks) - 1 - rng.randrange(5)] = rng.choice(["value", "number", "amount"])
    return "  ".join(toks).upper() if rng.random() < 0.5 else " ".join(toks)


def build(n: int, seed: int) -> tuple[list[dict], dict[str, str]]:
    """Rows (id, problem) and the planted type of each planted copy (id -> type)."""
    rng = random.Random(seed)
    vocab = [f"w{rng.getrandbits(40):x}" for _ in range(6000)]
    bench = _benchmarks()
    counts = {k: int(n * r) for k, r in RATES.items()}
    n_base = n - sum(counts.values())
    bases = [" ".join(rng.choices(vocab, k=rng.randint(75, 95))) for _ in range(n_base)]
    texts, planted = list(bases), {}
    kinds = ["exact"] * counts["exact"] + ["near"] * counts["near"]
    sources = rng.sample(range(n_base), len(kinds))  # each base copied at most once
    for kind, src in zip(kinds, sources, strict=True):
        toks = bases[src].split()
        if kind == "exact":
            text = "  ".join(toks).upper() if rng.random() < 0.5 else bases[src] + " "
        else:
            pos = rng.randrange(len(toks))
            if rng.random() < 0.5:
                toks[pos] = rng.choice(vocab)
            else:
                toks.insert(pos, rng.choice(vocab))
            text = " ".join(toks)
        planted[len(texts)] = (kind, src)
        texts.append(text)
    for _ in range(counts["contaminated"]):
        _, _, problem = rng.choice(bench)
        lead = " ".join(rng.choices(vocab, k=rng.randint(5, 30)))
        planted[len(texts)] = ("contaminated", None)
        texts.append(f"{lead} {_reword(problem, rng)}")
    ids = [f"{rng.getrandbits(64):016x}" for _ in texts]
    truth = {}
    for idx, (kind, src) in planted.items():
        if kind == "contaminated":
            truth[ids[idx]] = kind
        else:  # the larger id of the pair is the one a correct job removes
            truth[max(ids[idx], ids[src])] = kind
    return [{"id": i, "problem": t} for i, t in zip(ids, texts, strict=True)], truth


def write_round(run: RunDir, rows: list[dict], per_file: int = 50_000) -> None:
    for k in range(0, len(rows), per_file):
        chunk = rows[k : k + per_file]
        full = [
            {**R.lineage(r["id"], [], "verdict", "g", "v", 0, 0), "problem": r["problem"]}
            | {"combination_id": r["id"], "concepts": [], "level": "AIME", "rationale": ""}
            | {"verdicts": "{}", "round": 0}
            for r in chunk
        ]
        run.write_table(
            f"synthesis/round-0/accepted/part-{k // per_file:05d}.parquet",
            pa.Table.from_pylist(full, schema=ACCEPTED_SCHEMA),
        )


def score(removed: list[dict], truth: dict[str, str]) -> dict[str, tuple[float, float, int]]:
    """(precision, recall, planted) per type; a removal of an unplanted row is a false positive."""
    out = {}
    for kind, reason in REASON_OF.items():
        predicted = {r["id"] for r in removed if r["reason"] == reason}
        planted = {i for i, k in truth.items() if k == kind}
        hit = len(predicted & planted)
        out[kind] = (hit / len(predicted) if predicted else 1.0, hit / len(planted), len(planted))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--quick", action="store_true", help="20,000 rows")
    parser.add_argument("--cpus", type=int, default=2, help="Ray CPUs (the target is for 2)")
    args = parser.parse_args()
    n = 20_000 if args.quick else args.rows
    import ray

    from promptcot_ray.quality.job import run

    rows, truth = build(n, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = RunDir(f"{tmp}/run")
        write_round(run_dir, rows)
        benchmarks = [{"name": p.stem, "path": str(p)} for p in sorted(BENCH_DIR.glob("*.jsonl"))]
        cfg = QualityConfig(storage={"run_dir": run_dir.uri}, benchmarks=benchmarks)
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
        started = time.time()
        summary = run(cfg)
        seconds = time.time() - started
        ray.shutdown()
        removed = run_dir.read_table("problems-removed", columns=["id", "reason"]).to_pylist()
    report(n, seconds, summary, score(removed, truth), removed, truth)


def report(n, seconds, summary, scores, removed, truth) -> None:
    unplanted = sum(1 for r in removed if r["id"] not in truth)
    print(f"rows: {n:,}; wall time of the quality job: {seconds:.1f} s (target < 300 s)")
    print(
        f"kept {summary.kept:,}; removed by reason: {dict(Counter(r['reason'] for r in removed))}"
    )
    print(f"removed rows that were not planted: {unplanted}")
    ok = seconds < TARGETS["seconds"]
    for kind, (p, r, planted) in scores.items():
        need_r = TARGETS["recall"] if kind != "exact" else 0.0
        good = p >= TARGETS["precision"] and r >= need_r
        ok &= good
        print(
            f"{kind:>13}: planted {planted:,} precision {p:.4f} recall {r:.4f} "
            f"{'PASS' if good else 'FAIL'}"
        )
    print("OVERALL", "PASS" if ok else "FAIL")


if __name__ == "__main__":
    main()
