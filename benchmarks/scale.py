"""Synthesize at 2k to 400k combinations with the rehearsal engine: where the time goes.

Every engine call is the instant rehearsal stand-in (`engine: rehearsal`); everything else
is the real synthesize job (sampling tasks, the Ray Data graph with its stages and sink,
resume, finalize, ledger) on a local run directory with a synthetic 15.5k-concept pool.
Each size runs in its own process (its own local Ray, so the driver's peak RSS is its own)
and prints, per phase: seconds, ms per combination, driver peak RSS, and the objects
written with their sizes; then the same round re-run when finished (the no-op) and re-run
with its marker removed (nothing left to generate: combinations + resume + finalize again),
side by side across sizes. With --kill-at F the largest size is run once more, SIGKILLed
when a fraction F of its results files are written, and resumed: the seconds the resumed
run spends before its graph starts and before its first new results file, and whether its
decided ids equal the uninterrupted run's. With --s3-size N one more size runs on a moto
S3 server on 127.0.0.1 (real HTTP; no network latency). Not a timed test: on a shared
2-core machine read the ratios.

    .venv/bin/python benchmarks/scale.py                 # 2,000 and 20,000 combinations
    .venv/bin/python benchmarks/scale.py --sizes 2000    # one size
    .venv/bin/python benchmarks/scale.py --sizes 2000 400000 --kill-at 0.5
    .venv/bin/python benchmarks/scale.py --sizes 2000 --s3-size 100000  # + moto S3 on 127.0.0.1
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PHASES = ("resolve_pool", "ensure_combinations", "pending_combinations", "build_pipeline")
PHASES += ("write_rows", "finalize")
LABELS = {
    "resolve_pool": "read pool",
    "ensure_combinations": "sample + write + read combinations",
    "pending_combinations": "resume: done ids (id/status columns)",
    "build_pipeline": "build the lazy graph (processors)",
    "write_rows": "Ray Data graph: generate, judge x2, sink",
    "finalize": "finalize (2 parallel passes, compacted writes)",
    "rest": "preflight, config, ledger, stats, marker",
}


def _timed_phases(job, seconds: dict[str, float]) -> None:
    """Wrap the job module's phase functions so each call adds to `seconds`."""
    for name in PHASES:
        fn = getattr(job, name)

        def timed(*args, _fn=fn, _name=name, **kwargs):
            t0 = time.perf_counter()
            try:
                return _fn(*args, **kwargs)
            finally:
                seconds[_name] += time.perf_counter() - t0

        setattr(job, name, timed)


def _objects(uri: str) -> dict[str, list[int]]:
    """[count, bytes] of the files in each folder of the round (and the run's top files),
    from one recursive listing (local disk or S3)."""
    import pyarrow.fs as pafs

    from promptcot_ray.storage import RunDir

    run = RunDir(uri)
    base = run.path().rstrip("/") + "/"
    selector = pafs.FileSelector(run.path(), recursive=True)
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for info in run.fs.get_file_info(selector):
        if info.type == pafs.FileType.File:
            rel = tuple(info.path[len(base) :].split("/"))
            key = rel[2] if rel[:1] == ("synthesis",) and len(rel) > 3 else "/".join(rel[:-1])
            out[key or "."][0] += 1
            out[key or "."][1] += info.size
    return dict(out)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _config(n: int, run_dir: str, block_rows: int):
    from promptcot_ray.config import load_config
    from promptcot_ray.rehearsal import rehearsed
    from promptcot_ray.synthesis.config import SynthesizeConfig

    sets = [f"storage.run_dir={run_dir}", "pool.source=run"]
    sets += [f"combinations.num_combinations={n}", f"checkpoint_rows={block_rows}"]
    return rehearsed(load_config(SynthesizeConfig, REPO / "jobs/configs/local.yaml", sets))


def _results_files(run_dir: str | Path) -> int:  # local run directories only
    return len(list(Path(run_dir, "synthesis/round-0/results").glob("*.parquet")))


def _decided(run_dir: str) -> dict:
    """How many combinations accepted + rejected decided, how many distinct, and a digest of
    the sorted ids (equal digests: the same combinations decided the same way)."""
    from promptcot_ray.storage import RunDir

    run, digest, ids = RunDir(run_dir), hashlib.sha256(), []
    for name in ("accepted", "rejected"):
        column = run.read_table(f"synthesis/round-0/{name}", ["combination_id"])["combination_id"]
        part = sorted(column.to_pylist())
        digest.update(("\n".join(part) + f"\n{name}\n").encode())
        ids += part
    return {"decided": len(ids), "distinct": len(set(ids)), "digest": digest.hexdigest()[:16]}


def one_size(n: int, run_dir: str, num_cpus: int, block_rows: int) -> dict:
    """Run the round, then re-run it finished, then with its marker removed; return figures."""
    import ray

    from promptcot_ray.synthesis import job

    cfg = _config(n, run_dir, block_rows)
    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    seconds: dict[str, float] = defaultdict(float)
    _timed_phases(job, seconds)
    t0 = time.perf_counter()
    summary = job.run(cfg)
    total = time.perf_counter() - t0
    first = {**seconds, "rest": total - sum(seconds.values()), "total": total}
    rss_first = _rss_mb()
    objects = _objects(run_dir)
    t0 = time.perf_counter()
    job.run(cfg)  # finished round: the marker alone
    noop = time.perf_counter() - t0
    from promptcot_ray.storage import RunDir

    RunDir(run_dir).delete_file("synthesis/round-0/_SUCCESS.json")
    seconds.clear()
    t0 = time.perf_counter()
    job.run(cfg)  # nothing to generate: sampling read back, resume, finalize again
    refinal = {**seconds, "total": time.perf_counter() - t0}
    ray.shutdown()
    c = summary.counts
    return {
        "n": n,
        "first": first,
        "noop": noop,
        "refinalize": refinal,
        "rss_mb": rss_first,
        "rss_mb_end": _rss_mb(),
        "objects": objects,
        "accepted": c.accepted,
        "drafts": c.drafts,
        "duplicates": c.combinations - c.drafts,
        **_decided(run_dir),
    }


def resume_once(n: int, run_dir: str, num_cpus: int, block_rows: int) -> dict:
    """Run (or resume) the round once: the seconds until the graph starts and until the
    first new results file, the total, and what was decided."""
    import threading

    import ray

    from promptcot_ray.synthesis import job

    cfg = _config(n, run_dir, block_rows)
    before = _results_files(run_dir)
    marks: dict[str, float] = {}
    t0 = time.perf_counter()

    def watch() -> None:
        while "first_file" not in marks and "total" not in marks:
            if _results_files(run_dir) > before:
                marks["first_file"] = time.perf_counter() - t0
            time.sleep(0.05)

    threading.Thread(target=watch, daemon=True).start()
    graph = job.write_rows

    def write_rows(*args, **kwargs):
        marks.setdefault("graph_start", time.perf_counter() - t0)
        return graph(*args, **kwargs)

    job.write_rows = write_rows
    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    job.run(cfg)
    marks["total"] = time.perf_counter() - t0
    ray.shutdown()
    return {**marks, "files_before": before, **_decided(run_dir)}


def _pool_dir(concepts: int) -> Path:
    """A run directory holding only a synthetic pool (built once, copied into each run)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from sampler import synthetic_pool

    from promptcot_ray.concepts.store import write_pool
    from promptcot_ray.storage import RunDir

    base = Path(tempfile.mkdtemp(prefix="scale-pool-"))
    pool, _ = synthetic_pool(concepts, 64, concepts * 3 // 10, 50, seed=0)
    write_pool(RunDir(str(base)), pool, source="benchmarks/scale.py synthetic")
    return base


def _label(result: dict) -> str:
    return f"{result['n']:,}" + (" S3" if result.get("s3") else "")


def _print(results: list[dict]) -> None:
    head = "".join(f"{_label(r):>12}" for r in results)
    print(f"\n{'phase (seconds)':<50}{head}")
    for phase in (*PHASES, "rest", "total"):
        row = "".join(f"{r['first'].get(phase, 0.0):>12.2f}" for r in results)
        print(f"{LABELS.get(phase, phase):<50}{row}")
    print(f"{'ms per combination':<50}" + "".join(
        f"{1000 * r['first']['total'] / r['n']:>12.2f}" for r in results))  # fmt: skip
    local = [r for r in results if not r.get("s3")]
    if len(local) > 1:
        a, b = local[0], local[-1]
        marginal = 1000 * (b["first"]["total"] - a["first"]["total"]) / (b["n"] - a["n"])
        print(f"{'marginal ms per combination (first -> last size)':<50}{marginal:>12.2f}")
    print(f"{'driver peak RSS, MB':<50}" + "".join(f"{r['rss_mb']:>12.0f}" for r in results))
    counts = [f"{r['accepted']}/{r['drafts']}/{r['duplicates']}" for r in results]
    label = "accepted / drafts / duplicate combinations"
    print(f"{label:<50}" + "".join(f"{c:>12}" for c in counts))
    print(f"\n{'re-run (seconds)':<50}{head}")
    print(f"{'finished round (no-op: marker only)':<50}" + "".join(
        f"{r['noop']:>12.3f}" for r in results))  # fmt: skip
    print(f"{'marker removed: nothing to generate, total':<50}" + "".join(
        f"{r['refinalize']['total']:>12.2f}" for r in results))  # fmt: skip
    for phase in ("ensure_combinations", "pending_combinations", "finalize"):
        print(f"{'  ' + LABELS[phase]:<50}" + "".join(
            f"{r['refinalize'].get(phase, 0.0):>12.2f}" for r in results))  # fmt: skip
    print(f"\n{'objects written: files / MB':<50}{head}")
    for key in sorted({k for r in results for k in r["objects"]}):
        cells = [r["objects"].get(key, [0, 0]) for r in results]
        print(f"{key:<50}" + "".join(f"{c[0]:>5} /{c[1] / 1e6:>5.1f}" for c in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--concepts", type=int, default=15_500)
    parser.add_argument("--num-cpus", type=int, default=8, help="logical CPUs for local Ray")
    parser.add_argument("--block-rows", type=int, default=256, help="checkpoint_rows (400k's)")
    parser.add_argument(
        "--kill-at", type=float, help="SIGKILL the largest size at this fraction, then resume"
    )
    parser.add_argument(
        "--s3-size", type=int, help="also run this size on a moto S3 server on 127.0.0.1"
    )
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--resume-once", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--run-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # child process: one size, JSON on the last line
        fn = resume_once if args.resume_once else one_size
        result = fn(args.one, args.run_dir, args.num_cpus, args.block_rows)
        print(json.dumps(result))
        return
    t0 = time.perf_counter()
    pool_dir = _pool_dir(args.concepts)
    print(f"synthetic pool of {args.concepts:,} concepts in {time.perf_counter() - t0:.1f} s")
    results = []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_DEDUP_LOGS": "0"}
    for n in args.sizes:
        run_dir = Path(tempfile.mkdtemp(prefix=f"scale-{n}-"))
        shutil.copytree(pool_dir / "concepts", run_dir / "concepts")
        results.append(_one(args, n, str(run_dir), env))
        shutil.rmtree(run_dir, ignore_errors=True)
    largest = results[-1]  # of the local sizes
    if args.kill_at:
        kill = _kill_and_resume(largest, args, pool_dir, env)
    if args.s3_size:
        with _moto_server() as s3_env:
            uri = f"s3://{s3_env.pop('BUCKET')}/scale-{args.s3_size}"
            _upload_pool(pool_dir, uri, s3_env)
            results.append({**_one(args, args.s3_size, uri, {**env, **s3_env}), "s3": True})
    shutil.rmtree(pool_dir, ignore_errors=True)
    _print(results)
    if args.kill_at:
        _print_kill(largest, kill, args.kill_at)


def _one(args, n: int, run_dir: str, env: dict) -> dict:
    """One size in its own process (its own local Ray and peak RSS)."""
    cmd = [sys.executable, __file__, "--one", str(n), "--run-dir", run_dir]
    cmd += ["--num-cpus", str(args.num_cpus), "--block-rows", str(args.block_rows)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"size {n} failed:\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    where = " on S3" if run_dir.startswith("s3://") else ""
    print(f"{n:,} combinations{where}: {result['first']['total']:.1f} s", flush=True)
    return result


@contextlib.contextmanager
def _moto_server():
    """moto's S3 server on 127.0.0.1 (real HTTP), a bucket, and the environment to reach it."""
    import boto3

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = Path(sys.executable).with_name("moto_server")
    exe = [str(server)] if server.exists() else [sys.executable, "-m", "moto.server"]
    proc = subprocess.Popen([*exe, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "scale-benchmark",
        "AWS_SECRET_ACCESS_KEY": "scale-benchmark",
        "AWS_REGION": "us-east-1",
    }
    try:
        for _ in range(150):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                              aws_access_key_id="scale-benchmark",
                              aws_secret_access_key="scale-benchmark")  # fmt: skip
        client.create_bucket(Bucket="scale")
        yield {**env, "BUCKET": "scale"}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _upload_pool(pool_dir: Path, uri: str, env: dict) -> None:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        from promptcot_ray.storage import RunDir

        RunDir(uri).upload_dir(str(pool_dir / "concepts"), "concepts")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _child(args, n: int, run_dir: Path) -> list[str]:
    cmd = [sys.executable, __file__, "--one", str(n), "--run-dir", str(run_dir), "--resume-once"]
    return cmd + ["--num-cpus", str(args.num_cpus), "--block-rows", str(args.block_rows)]


def _kill_and_resume(reference: dict, args, pool_dir: Path, env: dict) -> dict:
    """The largest size again: SIGKILLed (driver and its local Ray) at the fraction, resumed."""
    n = reference["n"]
    run_dir = Path(tempfile.mkdtemp(prefix=f"scale-kill-{n}-"))
    shutil.copytree(pool_dir / "concepts", run_dir / "concepts")
    at = max(1, int(args.kill_at * reference["objects"]["results"][0]))
    t0 = time.perf_counter()
    # its own session: the kill takes the driver and the Ray processes it started
    proc = subprocess.Popen(_child(args, n, run_dir), env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    while proc.poll() is None and _results_files(run_dir) < at:
        time.sleep(0.2)
    if proc.poll() is not None:
        sys.exit(f"the run to kill ended first (rc {proc.returncode})")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = time.perf_counter() - t0
    files = _results_files(run_dir)
    done = subprocess.run(_child(args, n, run_dir), env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"the resumed run failed:\n{done.stderr[-4000:]}")
    resumed = json.loads(done.stdout.strip().splitlines()[-1])
    shutil.rmtree(run_dir, ignore_errors=True)
    return {"killed_after_s": killed_at, "files_at_kill": files, **resumed}


def _print_kill(reference: dict, kill: dict, fraction: float) -> None:
    n = reference["n"]
    print(f"\nSIGKILL at {fraction:.0%} of the results files, then resumed ({n:,} combinations)")
    rows = [
        ("killed after (s)", f"{kill['killed_after_s']:.1f}"),
        (
            "results files at the kill / uninterrupted",
            f"{kill['files_at_kill']} / {reference['objects']['results'][0]}",
        ),
        ("resumed: seconds before the graph starts", f"{kill['graph_start']:.2f}"),
        ("resumed: seconds to its first new results file", f"{kill.get('first_file', 0):.2f}"),
        ("resumed: total seconds", f"{kill['total']:.1f}"),
        ("decided / distinct combinations", f"{kill['decided']:,} / {kill['distinct']:,}"),
        (
            "ids equal the uninterrupted run's",
            str(kill["digest"] == reference["digest"] and kill["decided"] == reference["decided"]),
        ),
    ]
    for label, value in rows:
        print(f"{label:<50}{value:>16}")


if __name__ == "__main__":
    main()
