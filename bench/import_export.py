"""Import and export speed and memory, on a fresh SQLite database per size and shape.

    .venv/bin/python bench/import_export.py [--sizes 10000,50000,100000]
    .venv/bin/python bench/import_export.py --sizes 100000 --shapes chat,chat-long,toolcall --repeat 3

For each size N and shape the script writes N examples as OpenAI JSONL, imports them
through example_import (the path a Huey task takes), then exports them (OpenAI JSONL, or
--export-format) to /dev/null, consuming example_export's iterator. Each phase runs in its own process, so its
peak resident memory (ru_maxrss) belongs to that phase alone: flat figures across sizes
mean nothing grows with the file. "growth" is the peak minus the resident memory the
process had just before the phase (Django loaded, database migrated).

The shapes (--shapes, default chat):
- chat: a system prompt, a question and an answer, some in Japanese, two thirds labelled
  (about 340 bytes a record);
- toolcall: the same system prompt, the tools (one function definition), a question, an
  assistant turn that calls the function (no text), the tool's result, and the final answer
  (about 790 bytes a record);
- chat-long: the chat shape with a longer question and answer, so that a record is as many
  bytes as a toolcall record (the peer at equal size).
With several shapes, each size runs them one after the other (--repeat times, interleaved, the
fastest of each kept), and a second table gives each shape's speed as a share of chat's (and
toolcall's as a share of chat-long's: the same bytes), per conversation and per byte, by wall
clock and by the CPU time of the phase's process (in brackets in the first table; it moves much
less than the wall clock while other work shares the machine).

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


SYSTEM = {"role": "system", "content": "You are a helpful support agent. 丁寧に答えてください。"}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "track_order",
            "description": "Where a parcel is",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}},
                "required": ["order_id"],
            },
        },
    }
]
SHAPES = ("chat", "chat-long", "toolcall")


def chat_messages(i: int) -> list[dict]:
    return [
        SYSTEM,
        {"role": "user", "content": f"Order #{i}: my parcel has not arrived. 荷物がまだ届きません ({i})."},
        {"role": "assistant", "content": f"Sorry about order #{i}. I have asked the carrier to trace it."},
    ]


def chat_long_messages(i: int) -> list[dict]:
    """The chat shape padded to a toolcall record's size: longer question and answer."""
    return [
        SYSTEM,
        {
            "role": "user",
            "content": f"Order #{i}: my parcel has not arrived. 荷物がまだ届きません ({i}). It was due last "
            "week and the tracking page has not changed since it left the warehouse. Can you tell me "
            "where it is now and when it will arrive?",
        },
        {
            "role": "assistant",
            "content": f"Sorry about order #{i}. I have asked the carrier to trace it. The tracking page "
            "shows the parcel left our warehouse on time; the carrier will tell us where it is within a "
            "day, and I will write to you as soon as they answer. If it is lost, we will send a new one at "
            "once, free of charge. Thank you for your patience. 申し訳ございません。",
        },
    ]


def toolcall_messages(i: int) -> list[dict]:
    """The function is called, answers, and the assistant answers from its result."""
    eta = f"2026-12-{i % 28 + 1:02d}"
    arguments = json.dumps({"order_id": str(i)})
    call = {"id": "call_0", "type": "function", "function": {"name": "track_order", "arguments": arguments}}
    return [
        SYSTEM,
        {"role": "user", "content": f"Where is order #{i}? 荷物はどこ？"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_0", "content": json.dumps({"status": "in_transit", "eta": eta})},
        {"role": "assistant", "content": f"Order #{i} is in transit, due {eta}."},
    ]


def write_examples(path: Path, rows: int, shape: str = "chat") -> None:
    labels = ["billing", "shipping", None]
    messages = {"chat": chat_messages, "chat-long": chat_long_messages, "toolcall": toolcall_messages}[shape]
    with open(path, "w", encoding="utf-8") as f:
        for i in range(rows):
            record: dict = {"messages": messages(i)}
            if shape == "toolcall":
                record["tools"] = TOOLS
            if label := labels[i % 3]:
                record["label"] = label
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()


def phase_import(rows: int, data_dir: Path, shape: str) -> dict:
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from curation.io.imports import example_import, import_job_create
    from curation.models import Label, Project

    project = Project.objects.create(name="Bench", slug=SLUG)
    for name in ("billing", "shipping"):
        Label.objects.create(project=project, name=name)
    path = data_dir / "examples.jsonl"
    write_examples(path, rows, shape)
    with open(path, "rb") as f:
        job = import_job_create(project=project, user=None, fileobj=f, filename=path.name, format="openai")
    before = rss_mib()
    started, cpu = time.perf_counter(), time.process_time()
    job = example_import(job=job)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert job.status == job.Status.SUCCEEDED and job.rows_created == rows, (job.error, job.rows_created)
    result = {"seconds": seconds, "cpu": cpu, "rss_before": before, "peak": peak_mib()}
    return {**result, "bytes": path.stat().st_size}


def phase_export(rows: int, data_dir: Path, format: str) -> dict:
    from curation.io.exports import example_export
    from curation.models import Project

    project = Project.objects.get(slug=SLUG)
    before = rss_mib()
    started, cpu = time.perf_counter(), time.process_time()
    _type, _name, chunks = example_export(project=project, format=format, status="any")
    written = 0
    with open(os.devnull, "wb") as sink:
        for chunk in chunks:
            written += sink.write(chunk)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"seconds": seconds, "cpu": cpu, "rss_before": before, "peak": peak_mib(), "bytes": written}


def worker(phase: str, rows: int, data_dir: Path, format: str, shape: str) -> None:
    setup_django()
    result = phase_import(rows, data_dir, shape) if phase == "import" else phase_export(rows, data_dir, format)
    print(json.dumps(result))


def run_phase(phase: str, rows: int, data_dir: Path, format: str = "openai", shape: str = "chat") -> dict:
    env = dict(os.environ, SHIKOMI_DATA_DIR=str(data_dir), SECRET_KEY="bench")
    env.pop("DATABASE_URL", None)
    out = subprocess.run(
        [sys.executable, __file__, "--worker", phase, "--rows", str(rows), "--data-dir", str(data_dir)]
        + ["--export-format", format, "--shapes", shape],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def measure(rows: int, shape: str, format: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="shikomi-bench-") as tmp:
        data_dir = Path(tmp)
        imp = run_phase("import", rows, data_dir, shape=shape)
        exp = run_phase("export", rows, data_dir, format, shape=shape)
    return {"import": imp, "export": exp}


def fastest(tries: list[dict]) -> dict:
    """The fastest import and the fastest export of the tries (each with its own memory figures)."""
    return {phase: min((t[phase] for t in tries), key=lambda r: r["seconds"]) for phase in ("import", "export")}


def row_line(rows: int, shape: str, best: dict) -> str:
    imp, exp = best["import"], best["export"]
    return (
        f"| {shape} | {rows:,} | {imp['bytes'] / rows:.0f} | {imp['bytes'] / 2**20:.1f} "
        f"| {imp['seconds']:.2f} ({imp['cpu']:.2f}) | {rows / imp['seconds']:,.0f} "
        f"| {imp['bytes'] / 2**20 / imp['seconds']:.1f} "
        f"| {imp['peak']:.0f} (+{imp['peak'] - imp['rss_before']:.0f}) "
        f"| {exp['seconds']:.2f} ({exp['cpu']:.2f}) | {rows / exp['seconds']:,.0f} "
        f"| {exp['bytes'] / 2**20 / exp['seconds']:.1f} "
        f"| {exp['peak']:.0f} (+{exp['peak'] - exp['rss_before']:.0f}) |"
    )


def ratio_lines(rows: int, results: dict[str, dict], clock: str, peer: str) -> list[str]:
    """Each other shape's speed as a share of the peer's (1.00 = as fast; 0.80 = 20% slower), by
    wall-clock seconds or by the phase process's CPU seconds ("cpu": steadier while other work
    shares the CPUs)."""
    theirs_all = results[peer]
    lines = []
    for shape, best in results.items():
        if shape == peer or (peer != "chat" and shape == "chat"):
            continue
        cells = []
        for phase in ("import", "export"):
            mine, theirs = best[phase], theirs_all[phase]
            per_row = theirs[clock] / mine[clock]
            per_byte = (mine["bytes"] / mine[clock]) / (theirs["bytes"] / theirs[clock])
            cells += [f"{per_row:.2f}", f"{per_byte:.2f}"]
        name = "wall clock" if clock == "seconds" else "CPU time"
        lines.append(f"| {shape} / {peer} | {rows:,} | {name} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,50000,100000", help="comma-separated row counts")
    parser.add_argument("--export-format", default="openai", help="openai (default), alpaca, sharegpt, csv, parquet")
    parser.add_argument("--shapes", default="chat", help="comma-separated: chat (default), chat-long, toolcall")
    parser.add_argument("--repeat", type=int, default=1, help="tries of each size and shape, the fastest kept")
    parser.add_argument("--worker", choices=["import", "export"], help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.rows, args.data_dir, args.export_format, args.shapes)
        return
    shapes = [shape.strip() for shape in args.shapes.split(",") if shape.strip()]
    if not shapes or any(shape not in SHAPES for shape in shapes):
        parser.error(f"--shapes takes {', '.join(SHAPES)}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    machine = f"{platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs"
    print(f"# {time.strftime('%Y-%m-%d')}, {machine}; export format {args.export_format}; fastest of {args.repeat}")
    print()
    print(
        "| shape | rows | bytes/row | file MiB | import s (CPU s) | import rows/s | import MiB/s "
        "| import peak MiB (growth) | export s (CPU s) | export rows/s | export MiB/s | export peak MiB (growth) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    ratios = []
    for rows in (int(s) for s in args.sizes.split(",")):
        tries: dict[str, list[dict]] = {shape: [] for shape in shapes}
        for _round in range(args.repeat):
            for shape in shapes:
                tries[shape].append(measure(rows, shape, args.export_format))
        results = {shape: fastest(found) for shape, found in tries.items()}
        for shape, best in results.items():
            print(row_line(rows, shape, best), flush=True)
        for clock in ("seconds", "cpu"):
            for peer in ("chat", "chat-long"):
                if peer in results and len(results) > 1 + (peer != "chat" and "chat" in results):
                    ratios += ratio_lines(rows, results, clock, peer)
    if ratios:
        print()
        print("Speed as a share of the peer's in the same run (1.00 = as fast, 0.80 = 20% slower):")
        print()
        print(
            "| shapes | rows | clock | import per conversation | import per byte "
            "| export per conversation | export per byte |"
        )
        print("|---|---:|---|---:|---:|---:|---:|")
        print("\n".join(ratios))


if __name__ == "__main__":
    main()
