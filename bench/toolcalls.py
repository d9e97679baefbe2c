"""Tool calling through Shikomi's own services: fine-tune the embedded model on LLaMA-Factory's
Glaive tool-call demo (Chinese) and score base, few-shot base and tuned with the tool-call metrics.

    .venv/bin/python bench/toolcalls.py [--steps 16] [--valid 16] [--test-calls 16] [--test-other 8]
                                        [--data-dir DIR] [--keep] [--json out.json]

What docs/walkthrough-toolcalls.md shows in the browser, done by a script: create a chat project
and an admin, import the conversations with the ShareGPT importer (the service behind the Import
page and `manage.py import_examples`; it reads LLaMA-Factory's `function_call` / `observation`
turns and `tools` into the canonical conversation of docs/data-model.md), launch a LoRA run on the
embedded SmolLM2-135M-Instruct with a fixed, small number of optimiser steps (`training_run_create`,
which passes the quality gates), train it (`training_run_execute`), evaluate it on the test split
(`evaluation_start` / `evaluation_execute`: base model, base model with 3 training conversations in
the prompt, tuned model, same greedy decoding), and print the tool-call metrics and the text
metrics as markdown tables, with example answers.

Data: ../shared/data/toolcalls/glaive_toolcall_zh_demo.json (300 conversations, not part of the
repository); without it the script says so and stops. 43 of its 300 records are exact copies of
others: the script keeps one of each (257). Conversations that open with the same user message
(the data has 23 such groups; seven open with the same pizza order) stay in one split, so no test
prompt is a training prompt. The groups are shuffled with a fixed seed; the test split takes
`--test-calls` conversations that call a function and `--test-other` that do not, validation the
next `--valid`, train the rest.

What is evaluated: Shikomi evaluates the last assistant turn of each test example. A test example
is therefore its conversation cut after the turn to score: for a conversation with calls, the first
assistant turn that calls (the reference is that call: function and arguments); for one without,
the first assistant turn (the reference is a text answer, so a call there is a call too many: call
precision). Training and validation examples are whole conversations (every assistant turn trains:
calls, and the answers written from the tool results).

Everything is written to a separate data folder (a new temporary one, or --data-dir): its own
SQLite database, Huey queue and artifacts, so the developer's database is never touched. With
--keep (or --data-dir) the folder stays and the printed command serves it in the browser.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
DATA = ROOT.parent / "shared" / "data" / "toolcalls" / "glaive_toolcall_zh_demo.json"
SEED = 0  # which conversations go where

# The run: LoRA on the attention projections (the trainer's default targets), a fixed, small number
# of optimiser steps (16 steps of 4: 64 of the ~220 training conversations, once), and
# sequences of 512 tokens. A whole conversation is 660 tokens at the median (Chinese costs SmolLM2's
# tokenizer about one token a character, and the tool schemas are listed in the system message); the
# longest run to 4,500 and are cut at 512, which keeps the first call of nine conversations in ten
# (it ends within 530 tokens for nine in ten, 780 at most). About 30,000 tokens: 2 minutes at the
# trainer's ~250 tokens/s on 2 idle cores, much longer while other work shares them. A learning rate
# above ViGGO's 3e-4: the few steps must teach a new output form.
TRAIN_CONFIG: dict[str, Any] = {
    "method": "lora",
    "lora_rank": 8,
    "lora_alpha": 16,
    "learning_rate": 5e-4,
    "lr_scheduler": "cosine",
    "warmup_ratio": 0.05,
    "batch_size": 4,
    "max_seq_length": 512,
    "seed": 0,
}
MAX_NEW_TOKENS = 96  # a reference call is 43 tokens at the median, 75 for nine in ten, 130 at most (with its tags)
FEW_SHOT = 3
ADMIN = "toolcalls-admin"


# --- the data ------------------------------------------------------------------------------------


def read_records() -> list[dict[str, Any]]:
    """The file's records, exact copies dropped (the first of each kept, in file order)."""
    records = json.loads(DATA.read_text(encoding="utf-8"))
    unique: dict[str, dict[str, Any]] = {}
    for record in records:
        unique.setdefault(json.dumps(record, ensure_ascii=False, sort_keys=True), record)
    return list(unique.values())


def calls(record: dict[str, Any]) -> bool:
    return any(turn.get("from") == "function_call" for turn in record["conversations"])


def cut_for_test(record: dict[str, Any]) -> dict[str, Any]:
    """The conversation up to and including the turn to score: its first call, else its first answer."""
    turns = record["conversations"]
    wanted = "function_call" if calls(record) else "gpt"
    end = next(index for index, turn in enumerate(turns) if turn.get("from") == wanted)
    return {**record, "conversations": turns[: end + 1]}


def draw_splits(
    records: list[dict[str, Any]], *, test_calls: int, test_other: int, valid: int, seed: int
) -> dict[str, list[dict[str, Any]]]:
    """Train / validation / test, whole groups of conversations that open with the same user message."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(record["conversations"][0]["value"], []).append(record)
    order = list(groups.values())
    random.Random(seed).shuffle(order)
    test: list[dict[str, Any]] = []
    validation: list[dict[str, Any]] = []
    train: list[dict[str, Any]] = []
    wanted = {True: test_calls, False: test_other}
    for group in order:
        kind = calls(group[0])
        if all(calls(r) == kind for r in group) and wanted[kind] >= len(group):
            wanted[kind] -= len(group)
            test.extend(group)
        elif len(validation) + len(group) <= valid:
            validation.extend(group)
        else:
            train.extend(group)
    return {"train": train, "validation": validation, "test": [cut_for_test(r) for r in test]}


def write_import_file(path: Path, records: list[dict[str, Any]]) -> None:
    """The records as LLaMA-Factory writes them: a JSON array of {"conversations", "tools"}."""
    path.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")


# --- the walk-through ----------------------------------------------------------------------------


def isolate(data_dir: Path) -> None:
    """Point every store at `data_dir` before Django reads its settings: the database (even when
    DATABASE_URL names another), the Huey queue (a training run queues its own evaluation task),
    the cache and the artifacts."""
    os.environ["SHIKOMI_DATA_DIR"] = str(data_dir)
    os.environ["DATABASE_URL"] = f"sqlite:///{data_dir / 'shikomi.sqlite3'}"
    os.environ["HUEY_FILE"] = str(data_dir / "huey.sqlite3")
    os.environ["HUEY_IMMEDIATE"] = "false"
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))


def create_project(password: str, max_seq_length: int):
    """The project and its admin. Shikomi has no service for either (projects and people are made
    in Django's admin, and the demo loader writes them the same way), so they are plain rows."""
    from django.contrib.auth import get_user_model

    from curation.models import Membership, Project, Role

    project = Project.objects.create(
        name="Tool calls (zh)",
        slug="toolcalls",
        kind=Project.Kind.CHAT,
        description="Chinese function-calling conversations (LLaMA-Factory's glaive_toolcall_zh_demo).",
        max_seq_length=max_seq_length,
    )
    user = get_user_model().objects.create_user(username=ADMIN, password=password)
    Membership.objects.create(project=project, user=user, role=Role.ADMIN)
    return project, user


def import_split(project, user, path: Path, split: str) -> int:
    from curation.io.imports import example_import_path
    from curation.models import ImportJob

    job = example_import_path(project=project, user=user, path=path, format="sharegpt", options={"split": split})
    if job.status != ImportJob.Status.SUCCEEDED or job.rows_duplicate or (job.report or {}).get("errors_total"):
        raise SystemExit(f"import of {path.name} ({split}): {job.error or job.report}")
    return job.rows_created


def pick_examples(samples: list) -> list:
    """Three test samples to show: the first (by example id) whose tuned answer calls the right
    function, the first where it does not, and the first whose reference makes no call."""
    right = wrong = plain = None
    for sample in sorted(samples, key=lambda s: s.example_id or 0):
        score = (sample.metrics.get("tuned") or {}).get("tool_calls") or {}
        if not score.get("should_call"):
            plain = plain or sample
        elif score.get("function"):
            right = right or sample
        else:
            wrong = wrong or sample
    return [s for s in (right, wrong, plain) if s is not None]


def call_names(turn: dict[str, Any]) -> list[str]:
    """The functions a `function_call` turn calls (one, or a list of parallel calls)."""
    value = json.loads(turn["value"])
    return [call.get("name") for call in (value if isinstance(value, list) else [value])]


def train_functions(records: list[dict[str, Any]]) -> set[str]:
    return {
        name
        for record in records
        for turn in record["conversations"]
        if turn.get("from") == "function_call"
        for name in call_names(turn)
    }


def walkthrough(args: argparse.Namespace, data_dir: Path, password: str) -> dict[str, Any]:
    import django

    django.setup()
    from django.core.management import call_command

    from curation.quality.gates import LaunchBlocked
    from training.evaluation.services import evaluation_execute
    from training.evaluation.tasks import evaluation_start
    from training.models import Evaluation, TrainingRun
    from training.runs.tasks import training_run_create, training_run_execute

    call_command("migrate", verbosity=0)
    load_before = os.getloadavg()
    whole_started = time.monotonic()

    records = read_records()
    chosen = draw_splits(records, test_calls=args.test_calls, test_other=args.test_other, valid=args.valid, seed=SEED)
    firsts = {split: {r["conversations"][0]["value"] for r in rows} for split, rows in chosen.items()}
    assert not firsts["test"] & (firsts["train"] | firsts["validation"]), "a test prompt opens a training conversation"
    seen = train_functions(chosen["train"])
    test_functions = [name for r in chosen["test"] if calls(r) for name in call_names(r["conversations"][-1])]

    config = {
        **TRAIN_CONFIG,
        "max_steps": args.steps,
        "eval_every": max(1, args.steps // 2),
        "early_stopping_patience": 0,
    }
    project, user = create_project(password, config["max_seq_length"])
    folder = data_dir / "import"
    folder.mkdir(exist_ok=True)
    started = time.monotonic()
    imported = {}
    for split, rows in chosen.items():
        path = folder / f"toolcalls-{split}.json"
        write_import_file(path, rows)
        imported[split] = import_split(project, user, path, split)
    import_seconds = time.monotonic() - started
    print(f"imported {imported} into project {project.slug!r} in {import_seconds:.1f} s", flush=True)

    try:
        run = training_run_create(project=project, user=user, config=config, enqueue=False)
    except LaunchBlocked as blocked:
        raise SystemExit("launch blocked: " + "; ".join(b.message for b in blocked.blockers)) from None
    for warning in run.warnings:
        print(f"warning: {warning}", flush=True)
    print(
        f"training run {run.number}: {run.train_count} train, {run.validation_count} validation, "
        f"{args.steps} steps of {config['batch_size']}",
        flush=True,
    )
    started = time.monotonic()
    run = training_run_execute(run=run)
    train_wall = time.monotonic() - started
    if run.status != TrainingRun.Status.DONE:
        raise SystemExit(f"the run ended {run.status}: {run.error}\n{run.log[-3000:]}")
    print(f"trained in {train_wall:.0f} s: {run.result}", flush=True)

    # A finished run queues an evaluation of its own (default settings) for the worker. No worker
    # serves this data folder: that one is dropped, and this one, with the settings below, runs here.
    Evaluation.objects.filter(run=run, status=Evaluation.Status.QUEUED).delete()
    evaluation = evaluation_start(run=run, user=user, max_new_tokens=MAX_NEW_TOKENS, few_shot=FEW_SHOT, enqueue=False)
    print(f"evaluating on {evaluation.total} test examples", flush=True)
    evaluation = evaluation_execute(evaluation=evaluation)
    if evaluation.status != Evaluation.Status.DONE:
        raise SystemExit(f"the evaluation ended {evaluation.status}: {evaluation.error}")
    eval_seconds = (evaluation.finished_at - evaluation.started_at).total_seconds()
    samples = list(evaluation.samples.order_by("example_id"))
    result = run.result or {}
    return {
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "device": run.device,
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "data_dir": str(data_dir),
        "project": project.slug,
        "run": run.number,
        "run_id": run.pk,
        "evaluation": evaluation.pk,
        "examples": imported,
        "unique_records": len(records),
        "test_calls": sum(1 for r in chosen["test"] if calls(r)),
        "test_functions_seen_in_train": sum(1 for name in test_functions if name in seen),
        "config": run.config,
        "evaluation_config": evaluation.config,
        "training": {
            "final_train_loss": result.get("final_train_loss"),
            "final_val_loss": result.get("final_val_loss"),
            "best_val_loss": result.get("best_val_loss"),
            "steps": run.step,
            "tokens": result.get("tokens"),
            "seconds": result.get("seconds"),
            "tokens_per_second": result["tokens"] / result["seconds"] if result.get("seconds") else None,
            "wall_seconds": round(train_wall, 1),
        },
        "evaluation_seconds": round(eval_seconds, 1),
        "import_seconds": round(import_seconds, 1),
        "whole_seconds": round(time.monotonic() - whole_started, 1),
        "overall": evaluation.overall,
        "called": {
            system: {
                "answers": sum(
                    1 for s in samples if ((s.metrics.get(system) or {}).get("tool_calls") or {}).get("called")
                ),
                "calls": sum(((s.metrics.get(system) or {}).get("tool_calls") or {}).get("calls", 0) for s in samples),
            }
            for system, _name in SYSTEM_NAMES
        },
        "samples": [
            {
                "prompt": sample.prompt,
                "reference": sample.reference,
                **{system: sample.outputs.get(system, "") for system in ("base", "few_shot", "tuned")},
            }
            for sample in pick_examples(samples)
        ],
    }


# --- the report ----------------------------------------------------------------------------------

SYSTEM_NAMES = (("base", "base"), ("few_shot", "few-shot base"), ("tuned", "tuned"))
TOOL_ROWS = (
    ("function", "right function"),
    ("arguments_exact", "exact arguments"),
    ("argument_keys", "argument keys right"),
    ("valid_json", "valid JSON arguments"),
    ("schema_valid", "schema-valid calls"),
    ("call_precision", "call precision"),
    ("call_recall", "call recall"),
)


def _number(value: Any, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join((text or "").split()) or "(empty)"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _tools(scores: dict[str, Any]) -> dict[str, Any]:
    return scores.get("tool_calls") or {}


def markdown(report: dict[str, Any]) -> str:
    overall = report["overall"]
    systems = [overall.get(key) or {} for key, _name in SYSTEM_NAMES]
    header = "| metric | " + " | ".join(name for _key, name in SYSTEM_NAMES) + " |"
    rule = "|---|" + "---:|" * len(SYSTEM_NAMES)
    lines = [header, rule]
    for key, name in TOOL_ROWS:
        lines.append(f"| {name} | " + " | ".join(_number(_tools(s).get(key), 3) for s in systems) + " |")
    called = report["called"]
    lines.append(
        "| answers with a call / calls made | "
        + " | ".join(f"{called[key]['answers']} / {called[key]['calls']}" for key, _name in SYSTEM_NAMES)
        + " |"
    )
    text_rows = [
        ("BLEU (characters)", lambda s: _number(s.get("bleu"), 1)),
        ("chrF", lambda s: _number(s.get("chrf"), 1)),
        ("ROUGE-L", lambda s: _number(s.get("rouge_l"), 1)),
        ("perplexity of the reference", lambda s: _number(s.get("perplexity"), 2)),
        ("mean length, characters", lambda s: _number((s.get("length") or {}).get("mean_chars"), 0)),
    ]
    for name, cell in text_rows:
        lines.append(f"| {name} | " + " | ".join(cell(s) for s in systems) + " |")
    training = report["training"]
    machine = report["machine"]
    config = report["config"]
    examples = report["examples"]
    calls_expected = _tools(systems[-1]).get("examples")
    lines += [
        "",
        "| run | |",
        "|---|---:|",
        f"| conversations (train / validation / test) | {examples['train']} / {examples['validation']} / "
        f"{examples['test']} |",
        f"| test references that call / that answer in text | {calls_expected} / "
        f"{examples['test'] - (calls_expected or 0)} |",
        f"| test calls to a function some training conversation calls | "
        f"{report['test_functions_seen_in_train']} of {report['test_calls']} |",
        f"| final train loss | {_number(training['final_train_loss'], 3)} |",
        f"| final validation loss | {_number(training['final_val_loss'], 3)} |",
        f"| optimiser steps | {training['steps']} |",
        f"| tokens trained on | {training['tokens']} |",
        f"| training seconds (trainer, incl. loading and validation) | {_number(training['seconds'], 0)} |",
        f"| tokens/s | {_number(training['tokens_per_second'], 0)} |",
        f"| evaluation seconds (3 systems x {examples['test']} answers + perplexity) | "
        f"{_number(report['evaluation_seconds'], 0)} |",
        f"| whole script, seconds (import, training, evaluation) | {_number(report['whole_seconds'], 0)} |",
        "",
        f"Machine: {machine['processor']}, {machine['cpu_count']} CPU cores, {machine['device']}; load average "
        f"{machine['load_average_before'][0]} before, {machine['load_average_after'][0]} after. Run: LoRA r="
        f"{config['lora_rank']}/alpha {config['lora_alpha']}, lr {config['learning_rate']:g} {config['lr_scheduler']}, "
        f"batch {config['batch_size']}, {config['max_steps']} steps, sequences of {config['max_seq_length']} tokens. "
        f"Evaluation: greedy, at most {report['evaluation_config']['max_new_tokens']} new tokens, "
        f"{report['evaluation_config']['few_shot']} training conversations in the few-shot prompt.",
    ]
    for number, sample in enumerate(report["samples"], start=1):
        lines += [
            "",
            f"**Example {number}** — {_one_line(sample['prompt'], 200)}",
            "",
            f"- reference: {_one_line(sample['reference'])}",
            f"- base: {_one_line(sample['base'])}",
            f"- few-shot base: {_one_line(sample['few_shot'])}",
            f"- tuned: {_one_line(sample['tuned'])}",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=16, help="optimiser steps of 4 conversations (default 16)")
    parser.add_argument("--valid", type=int, default=16, help="validation conversations (default 16)")
    parser.add_argument("--test-calls", type=int, default=16, help="test conversations that call (default 16)")
    parser.add_argument("--test-other", type=int, default=8, help="test conversations that do not (default 8)")
    parser.add_argument(
        "--data-dir", type=Path, help="a new or empty folder to work in (kept); default: a temporary one"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary data folder, to look at it in the browser"
    )
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args()
    if not DATA.is_file():
        print(f"{DATA} is missing: this benchmark needs ../shared/data/toolcalls (not part of the repository).")
        return
    if args.steps < 1 or args.test_calls < 1 or args.valid < 1 or args.test_other < 0:
        parser.error("--steps, --valid and --test-calls must be at least 1, --test-other at least 0")
    if args.data_dir is not None:
        data_dir = args.data_dir.resolve()
        if data_dir.exists() and any(data_dir.iterdir()):
            parser.error(f"--data-dir {data_dir} is not empty; give a new or empty folder")
        data_dir.mkdir(parents=True, exist_ok=True)
        keep = True
    else:
        data_dir = Path(tempfile.mkdtemp(prefix="shikomi-toolcalls-"))
        keep = args.keep
    isolate(data_dir)
    password = secrets.token_urlsafe(12)
    try:
        report = walkthrough(args, data_dir, password)
    finally:
        if not keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    print()
    print(markdown(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    if keep:
        print(
            f"\nThe data folder is kept. To look at it in the browser (log in as {ADMIN} / {password}):\n"
            f"  env -u DATABASE_URL -u REDIS_URL SHIKOMI_DATA_DIR={data_dir} .venv/bin/python manage.py runserver\n"
            f"then open /p/{report['project']}/runs/{report['run_id']}/"
        )


if __name__ == "__main__":
    main()
