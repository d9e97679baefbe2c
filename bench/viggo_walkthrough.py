"""One real project end to end through Shikomi's own services: ViGGO, meaning representation -> sentence.

    .venv/bin/python bench/viggo_walkthrough.py [--train 300] [--valid 40] [--test 60] [--epochs 3]
                                                [--data-dir DIR] [--keep] [--json out.json]

What docs/walkthrough-viggo.md shows in the browser, done by a script: create a chat project and
an admin, import ViGGO rows with the CSV importer (the service behind the Import page and
`manage.py import_examples`), launch a LoRA run on the embedded SmolLM2-135M-Instruct
(`training_run_create`, which passes the quality gates), train it (`training_run_execute`),
evaluate it on the test split (`evaluation_start` / `evaluation_execute`: base model, base model
with 3 training examples in the prompt, tuned model, same greedy decoding), and print the
metrics as a markdown table with three example rows.

Data: ../shared/data/viggo/{train,valid,test}.csv (columns mr, ref; not part of the repository);
without it the script says so and stops. ViGGO has several references per meaning representation
(MR): each split here takes one row per MR (a seeded shuffle, then the first row of each MR), and
validation and test take only MRs that appear nowhere in ViGGO's training file, so the test set
says how the model does on MRs it has never seen (and the leakage gate has nothing to block).
Each example is a system prompt, the user's short instruction with the MR, and the reference as
the assistant's answer.

Everything is written to a separate data folder (a new temporary one, or --data-dir): its own
SQLite database, Huey queue and artifacts, so the developer's database is never touched. With
--keep (or --data-dir) the folder stays and the printed command serves it in the browser.
"""

from __future__ import annotations

import argparse
import csv
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
VIGGO = ROOT.parent / "shared" / "data" / "viggo"

SYSTEM_PROMPT = (
    "You turn the meaning representation of a video game dialogue turn into one fluent English "
    "sentence that states exactly its facts, nothing more."
)
INSTRUCTION = "Write the sentence for this meaning representation."
SEED = 0  # which rows are drawn

# The run: LoRA on the attention projections (the trainer's defaults for rank, alpha and
# targets), short sequences (a ViGGO example is about 110 tokens, the longest about 200), a few
# passes over a few hundred examples: 106k tokens, 7 to 8 minutes at SmolLM2-135M's ~270 tokens/s
# on 2 idle CPU cores (much longer while other work shares them). Validation loss once per epoch.
TRAIN_CONFIG: dict[str, Any] = {
    "method": "lora",
    "lora_rank": 8,
    "lora_alpha": 16,
    "learning_rate": 3e-4,
    "lr_scheduler": "cosine",
    "warmup_ratio": 0.03,
    "batch_size": 8,
    "max_seq_length": 256,
    "eval_every": 0,
    "seed": 0,
}
MAX_NEW_TOKENS = 64  # ViGGO references are ~30 tokens, the longest ~80
FEW_SHOT = 3
ADMIN = "viggo-admin"


# --- the data ------------------------------------------------------------------------------------


def read_viggo(split: str) -> list[dict[str, str]]:
    with (VIGGO / f"{split}.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def one_per_mr(rows: list[dict[str, str]], count: int, *, exclude: set[str], seed: int) -> list[dict[str, str]]:
    """`count` rows with distinct MRs, none in `exclude`, drawn by a seeded shuffle."""
    shuffled = list(rows)
    random.Random(seed).shuffle(shuffled)
    chosen: list[dict[str, str]] = []
    seen = set(exclude)
    for row in shuffled:
        if row["mr"] in seen:
            continue
        seen.add(row["mr"])
        chosen.append(row)
        if len(chosen) == count:
            break
    return chosen


def dialogue_act(mr: str) -> str:
    return mr.split("(", 1)[0].strip()


def write_import_file(path: Path, rows: list[dict[str, str]], split: str) -> None:
    """A CSV the importer reads without a mapping (the Import page takes it as it is): system,
    instruction and input make the conversation's first turns, output the answer, split the
    split; `act` (the dialogue act) is kept in each example's metadata."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["system", "instruction", "input", "output", "split", "act"])
        for row in rows:
            writer.writerow([SYSTEM_PROMPT, INSTRUCTION, row["mr"], row["ref"], split, dialogue_act(row["mr"])])


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


def create_project(password: str):
    """The project and its admin. Shikomi has no service for either (projects and people are made
    in Django's admin, and the demo loader writes them the same way), so they are plain rows."""
    from django.contrib.auth import get_user_model

    from curation.models import Membership, Project, Role

    project = Project.objects.create(
        name="ViGGO",
        slug="viggo",
        kind=Project.Kind.CHAT,
        description="Video game dialogue: meaning representation -> one sentence (ViGGO, Juraska et al. 2019).",
        system_prompt=SYSTEM_PROMPT,
        max_seq_length=TRAIN_CONFIG["max_seq_length"],
    )
    user = get_user_model().objects.create_user(username=ADMIN, password=password)
    Membership.objects.create(project=project, user=user, role=Role.ADMIN)
    return project, user


def import_split(project, user, path: Path, split: str) -> int:
    from curation.io.imports import example_import_path
    from curation.models import ImportJob

    job = example_import_path(project=project, user=user, path=path, format="csv", options={"split": split})
    if job.status != ImportJob.Status.SUCCEEDED or job.rows_duplicate:
        raise SystemExit(f"import of {path.name} ({split}): {job.error or job.report}")
    return job.rows_created


def pick_examples(samples: list, count: int = 3) -> list:
    """The first samples (by example id) of different dialogue acts: deterministic, and varied."""
    chosen, acts = [], set()
    for sample in sorted(samples, key=lambda s: s.example_id or 0):
        act = dialogue_act(sample.prompt.rsplit("\n", 1)[-1])
        if act not in acts:
            acts.add(act)
            chosen.append(sample)
        if len(chosen) == count:
            break
    return chosen


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

    train_rows = read_viggo("train")
    in_train = {row["mr"] for row in train_rows}
    chosen = {
        "train": one_per_mr(train_rows, args.train, exclude=set(), seed=SEED),
        "validation": one_per_mr(read_viggo("valid"), args.valid, exclude=in_train, seed=SEED),
        "test": one_per_mr(read_viggo("test"), args.test, exclude=in_train, seed=SEED),
    }
    mrs = {split: {row["mr"] for row in rows} for split, rows in chosen.items()}
    assert not mrs["test"] & (mrs["train"] | mrs["validation"]), "a test MR is also in train or validation"

    project, user = create_project(password)
    folder = data_dir / "import"
    folder.mkdir(exist_ok=True)
    started = time.monotonic()
    imported = {}
    for split, rows in chosen.items():
        path = folder / f"viggo-{split}.csv"
        write_import_file(path, rows, split)
        imported[split] = import_split(project, user, path, split)
    import_seconds = time.monotonic() - started
    print(f"imported {imported} into project {project.slug!r} in {import_seconds:.1f} s", flush=True)

    config = {**TRAIN_CONFIG, "epochs": args.epochs}
    try:
        run = training_run_create(project=project, user=user, config=config, enqueue=False)
    except LaunchBlocked as blocked:
        raise SystemExit("launch blocked: " + "; ".join(b.message for b in blocked.blockers)) from None
    for warning in run.warnings:
        print(f"warning: {warning}", flush=True)
    print(f"training run {run.number}: {run.train_count} train, {run.validation_count} validation", flush=True)
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
            "tokens_per_second_steps": (run.progress or {}).get("tokens_per_second"),
            "wall_seconds": round(train_wall, 1),
        },
        "evaluation_seconds": round(eval_seconds, 1),
        "import_seconds": round(import_seconds, 1),
        "overall": evaluation.overall,
        "samples": [
            {
                "mr": sample.prompt.rsplit("\n", 1)[-1],
                "reference": sample.reference,
                **{system: sample.outputs.get(system, "") for system in ("base", "few_shot", "tuned")},
            }
            for sample in pick_examples(samples)
        ],
    }


# --- the report ----------------------------------------------------------------------------------

SYSTEM_NAMES = (("base", "base"), ("few_shot", "few-shot base"), ("tuned", "tuned"))


def _number(value: Any, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _one_line(text: str) -> str:
    return " ".join((text or "").split()) or "(empty)"


def markdown(report: dict[str, Any]) -> str:
    overall = report["overall"]
    rows = [
        ("BLEU", lambda s: _number(s.get("bleu"), 1)),
        ("chrF", lambda s: _number(s.get("chrf"), 1)),
        ("ROUGE-L", lambda s: _number(s.get("rouge_l"), 1)),
        ("perplexity of the reference", lambda s: _number(s.get("perplexity"), 2)),
        ("repetition (repeated 3-grams)", lambda s: _number(s.get("repetition"), 3)),
        ("distinct-2", lambda s: _number(s.get("distinct_2"), 3)),
        ("mean length, words", lambda s: _number((s.get("length") or {}).get("mean_tokens"), 1)),
        ("mean length, characters", lambda s: _number((s.get("length") or {}).get("mean_chars"), 0)),
    ]
    lines = [
        "| metric | " + " | ".join(name for _key, name in SYSTEM_NAMES) + " |",
        "|---|" + "---:|" * len(SYSTEM_NAMES),
    ]
    for name, cell in rows:
        lines.append(f"| {name} | " + " | ".join(cell(overall.get(key) or {}) for key, _n in SYSTEM_NAMES) + " |")
    training = report["training"]
    machine = report["machine"]
    config = report["config"]
    examples = report["examples"]
    lines += [
        "",
        "| run | |",
        "|---|---:|",
        f"| examples (train / validation / test) | {examples['train']} / {examples['validation']} / "
        f"{examples['test']} |",
        f"| final train loss | {_number(training['final_train_loss'], 3)} |",
        f"| final validation loss | {_number(training['final_val_loss'], 3)} |",
        f"| optimiser steps | {training['steps']} |",
        f"| training seconds (trainer, incl. loading and validation) | {_number(training['seconds'], 0)} |",
        f"| tokens trained on | {training['tokens']} |",
        f"| tokens/s (overall / last steps) | {_number(training['tokens_per_second'], 0)} / "
        f"{_number(training['tokens_per_second_steps'], 0)} |",
        f"| evaluation seconds (3 systems x {examples['test']} answers + perplexity) | "
        f"{_number(report['evaluation_seconds'], 0)} |",
        "",
        f"Machine: {machine['processor']}, {machine['cpu_count']} CPU cores, {machine['device']}; load average "
        f"{machine['load_average_before'][0]} before, {machine['load_average_after'][0]} after. Run: LoRA r="
        f"{config['lora_rank']}/alpha {config['lora_alpha']}, lr {config['learning_rate']:g} {config['lr_scheduler']}, "
        f"batch {config['batch_size']}, {config['epochs']:g} epochs, sequences of {config['max_seq_length']} tokens. "
        f"Evaluation: greedy, at most {report['evaluation_config']['max_new_tokens']} new tokens, "
        f"{report['evaluation_config']['few_shot']} training examples in the few-shot prompt.",
    ]
    for number, sample in enumerate(report["samples"], start=1):
        lines += [
            "",
            f"**Example {number}** — `{_one_line(sample['mr'])}`",
            "",
            f"- reference: {_one_line(sample['reference'])}",
            f"- base: {_one_line(sample['base'])}",
            f"- few-shot base: {_one_line(sample['few_shot'])}",
            f"- tuned: {_one_line(sample['tuned'])}",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=300, help="training examples (default 300)")
    parser.add_argument("--valid", type=int, default=40, help="validation examples (default 40)")
    parser.add_argument("--test", type=int, default=60, help="test examples (default 60)")
    parser.add_argument("--epochs", type=float, default=3, help="passes over the training examples (default 3)")
    parser.add_argument(
        "--data-dir", type=Path, help="a new or empty folder to work in (kept); default: a temporary one"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary data folder, to look at it in the browser"
    )
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args()
    missing = [name for name in ("train.csv", "valid.csv", "test.csv") if not (VIGGO / name).is_file()]
    if missing:
        print(
            f"{VIGGO} lacks {', '.join(missing)}: this walk-through needs ../shared/data/viggo "
            "(not part of the repository)."
        )
        return
    for name in ("train", "valid", "test"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.data_dir is not None:
        data_dir = args.data_dir.resolve()
        if data_dir.exists() and any(data_dir.iterdir()):
            parser.error(f"--data-dir {data_dir} is not empty; give a new or empty folder")
        data_dir.mkdir(parents=True, exist_ok=True)
        keep = True
    else:
        data_dir = Path(tempfile.mkdtemp(prefix="shikomi-viggo-"))
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
