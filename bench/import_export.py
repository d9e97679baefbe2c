"""Import and export speed and memory, on a fresh SQLite database per size.

    .venv/bin/python bench/import_export.py [--sizes 10000,50000,100000]

For each size N the script writes N small chat examples as OpenAI JSONL, imports them
through example_import (the path a Huey task takes), then exports them (OpenAI JSONL, or
--export-format) to /dev/null, consuming example_export's iterator. Each phase runs in its own process, so its
peak resident memory (ru_maxrss) belongs to that phase alone: flat figures across sizes
mean nothing grows with the file. "growth" is the peak minus the resident memory the
process had just before the phase (Django loaded, database migrated).

Figures are recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SLUG = "bench"


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_examples(path: Path, rows: int) -> None:
    labels = ["billing", "shipping", None]
    with open(path, "w", encoding="utf-8") as f:
        for i in range(rows):
            record = {
                "messages": [
                    {"role": "system", "content": "You are a helpful support agent. 丁寧に答えてください。"},
                    {"role": "user", "content": f"Order #{i}: my parcel has not arrived. 荷物がまだ届きません ({i})."},
                    {"role": "assistant", "content": f"Sorry about order #{i}. I have asked the carrier to trace it."},
                ],
            }
            if label := labels[i % 3]:
                record["label"] = label
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()


def phase_import(rows: int, data_dir: Path) -> dict:
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from curation.io.imports import example_import, import_job_create
    from curation.models import Label, Project

    project = Project.objects.create(name="Bench", slug=SLUG)
    for name in ("billing", "shipping"):
        Label.objects.create(project=project, name=name)
    path = data_dir / "examples.jsonl"
    write_examples(path, rows)
    with open(path, "rb") as f:
        job = import_job_create(project=project, user=None, fileobj=f, filename=path.name, format="openai")
    before = rss_mib()
    started = time.perf_counter()
    job = example_import(job=job)
    seconds = time.perf_counter() - started
    assert job.status == job.Status.SUCCEEDED and job.rows_created == rows, (job.error, job.rows_created)
    return {"seconds": seconds, "rss_before": before, "peak": peak_mib(), "bytes": path.stat().st_size}


def phase_export(rows: int, data_dir: Path, format: str) -> dict:
    from curation.io.exports import example_export
    from curation.models import Project

    project = Project.objects.get(slug=SLUG)
    before = rss_mib()
    started = time.perf_counter()
    _type, _name, chunks = example_export(project=project, format=format)
    written = 0
    with open(os.devnull, "wb") as sink:
        for chunk in chunks:
            written += sink.write(chunk)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rss_before": before, "peak": peak_mib(), "bytes": written}


def worker(phase: str, rows: int, data_dir: Path, format: str) -> None:
    setup_django()
    result = phase_import(rows, data_dir) if phase == "import" else phase_export(rows, data_dir, format)
    print(json.dumps(result))


def run_phase(phase: str, rows: int, data_dir: Path, format: str = "openai") -> dict:
    env = dict(os.environ, SHIKOMI_DATA_DIR=str(data_dir), SECRET_KEY="bench")
    env.pop("DATABASE_URL", None)
    out = subprocess.run(
        [sys.executable, __file__, "--worker", phase, "--rows", str(rows), "--data-dir", str(data_dir)]
        + ["--export-format", format],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,50000,100000", help="comma-separated row counts")
    parser.add_argument("--export-format", default="openai", help="openai (default), alpaca, sharegpt, csv, parquet")
    parser.add_argument("--worker", choices=["import", "export"], help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.rows, args.data_dir, args.export_format)
        return

    machine = f"{platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs"
    print(f"# {time.strftime('%Y-%m-%d')}, {machine}; export format {args.export_format}")
    print()
    print(
        "| rows | file MiB | import s | import rows/s | import peak MiB (growth) "
        "| export s | export rows/s | export peak MiB (growth) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for rows in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="shikomi-bench-") as tmp:
            data_dir = Path(tmp)
            imp = run_phase("import", rows, data_dir)
            exp = run_phase("export", rows, data_dir, args.export_format)
        print(
            f"| {rows:,} | {imp['bytes'] / 2**20:.1f} "
            f"| {imp['seconds']:.2f} | {rows / imp['seconds']:,.0f} "
            f"| {imp['peak']:.0f} (+{imp['peak'] - imp['rss_before']:.0f}) "
            f"| {exp['seconds']:.2f} | {rows / exp['seconds']:,.0f} "
            f"| {exp['peak']:.0f} (+{exp['peak'] - exp['rss_before']:.0f}) |",
            flush=True,
        )


if __name__ == "__main__":
    main()
