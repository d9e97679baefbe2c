"""Shikomi's trainer against TRL's SFTTrainer set up to do the same work: same model, data, steps.

    .venv/bin/python bench/train.py [--examples 128] [--batch-size 8] [--seq 256] [--rank 8] [--rounds 3]

Data: ViGGO (../shared/data/viggo/train.csv, meaning representation -> sentence) as chat
examples, the kind of form-teaching task fine-tuning is for; without ../shared the script says so
and stops. Model: the embedded SmolLM2-135M-Instruct (or --base-model FOLDER), LoRA on the
attention projections, the same rank, alpha, learning rate, batch size, sequence length and one
epoch for both.

The comparison is fair: TRL does the work ours does, with the options a careful TRL user sets.
Its examples are prompt-completion conversations with `completion_only_loss` (the loss on the
assistant answer only, as ours), its batches are grouped by length
(`train_sampling_strategy="group_by_length"`, as ours), and gradient checkpointing is off (ours
has it off by default too); bf16 only on a GPU that has it. `--trl-defaults` adds a row of TRL
at its own defaults (random batches, gradient checkpointing on) for reference.

Each trainer runs in a subprocess of its own, so peak memory (max RSS) is its own. Rounds are
interleaved, the order reversed every round (ours, trl; trl, ours; ...), so that a machine
that warms up or slows down is shared fairly; the table shows each trainer's median round.
Throughput is input tokens (no padding) per second from the start of the first optimiser step to
the end of the last, for both: model loading, tokenisation and TRL's set-up (building the
trainer, the data loader, the first batch fetch before step 1) are excluded. Loss is measured the
same way for both afterwards: the mean loss on the assistant tokens of 64 held-out examples, so
"equal or better loss" compares like with like. Figures go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
VIGGO = ROOT.parent / "shared" / "data" / "viggo" / "train.csv"
PROMPT = "Write one sentence that says exactly this, in plain English:\n{mr}"


def viggo(count: int, skip: int = 0) -> list[list[dict[str, str]]]:
    with VIGGO.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))[skip : skip + count]
    return [
        [{"role": "user", "content": PROMPT.format(mr=row["mr"])}, {"role": "assistant", "content": row["ref"]}]
        for row in rows
    ]


def held_out_loss(model, tokenizer, conversations, seq: int) -> float:
    """Mean loss on the assistant tokens, the same function for both trainers' models."""
    import torch

    from training.engine.data import encode
    from training.engine.interface import TrainExample

    model.eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for messages in conversations:
            item = encode(tokenizer, TrainExample(messages=messages), seq)
            if item is None:
                continue
            ids = torch.tensor([item.input_ids])
            labels = torch.tensor([item.labels])
            logits = model(input_ids=ids).logits[:, :-1]
            target = labels[:, 1:]
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]).float(), target.reshape(-1), ignore_index=-100, reduction="sum"
            )
            total += float(loss)
            count += int((target != -100).sum())
    return total / count


def run_ours(args: argparse.Namespace, out: Path) -> dict:
    from training.engine.config import TrainConfig
    from training.engine.interface import NoCallbacks, TrainExample
    from training.engine.modeling import load_trained
    from training.engine.trainer import train

    marks: dict[str, float] = {}

    class Clock(NoCallbacks):
        def should_stop(self) -> bool:
            marks.setdefault("start", time.monotonic())
            return False

        def on_log(self, progress) -> None:
            marks["end"] = time.monotonic()
            marks["tokens"] = progress.tokens_seen
            marks["steps"] = progress.step

    config = TrainConfig(
        method="lora",
        base_model=args.base_model,
        lora_rank=args.rank,
        lora_alpha=2 * args.rank,
        lora_dropout=0.0,
        learning_rate=args.lr,
        lr_scheduler="linear",
        warmup_ratio=0.0,
        batch_size=args.batch_size,
        epochs=1,
        max_seq_length=args.seq,
        eval_every=0,
        save_every=10_000,
        seed=0,
    )
    train_set = [TrainExample(messages=m) for m in viggo(args.examples)]
    result = train(config, train_set, [], out / "ours", callbacks=Clock())
    tokenizer, model = load_trained(out / "ours")
    return {
        "seconds": marks["end"] - marks["start"],
        "tokens": marks["tokens"],
        "steps": marks["steps"],
        "loss": held_out_loss(model, tokenizer, viggo(64, skip=4000), args.seq),
        "device": result.device,
    }


def run_trl(args: argparse.Namespace, out: Path, *, fair: bool = True) -> dict:
    """TRL's SFTTrainer on the same examples: `fair` (completion-only loss, length-grouped
    batches, no gradient checkpointing) or at its own defaults."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from training.engine.dpo import _drop_gguf_marker
    from training.engine.modeling import load_base

    tokenizer, model, device = load_base(args.base_model, method="full")
    _drop_gguf_marker(model)  # transformers' Trainer refuses a model still marked as GGUF-quantised
    conversations = viggo(args.examples)
    if fair:
        # Prompt-completion: the loss is on the completion (the assistant turn and its end marker).
        rows = [{"prompt": m[:-1], "completion": m[-1:]} for m in conversations]
        options = {
            "completion_only_loss": True,
            "train_sampling_strategy": "group_by_length",
            "gradient_checkpointing": False,
        }
    else:
        rows = [{"messages": m} for m in conversations]
        options = {}
    config = SFTConfig(
        output_dir=str(out / "trl"),
        per_device_train_batch_size=args.batch_size,
        num_train_epochs=1,
        learning_rate=args.lr,
        lr_scheduler_type="linear",
        max_length=args.seq,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        seed=0,
        # TRL defaults to bf16, which transformers refuses on a CPU.
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
        **options,
    )
    peft_config = LoraConfig(
        r=args.rank,
        lora_alpha=2 * args.rank,
        lora_dropout=0.0,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
        task_type="CAUSAL_LM",
    )
    marks: dict[str, float] = {}

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201
            marks.setdefault("start", time.monotonic())

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201
            marks["end"] = time.monotonic()

    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[Clock()],
    )
    tokens = sum(len(row["input_ids"]) for row in trainer.train_dataset)
    trainer.train()
    return {
        "seconds": marks["end"] - marks["start"],
        "tokens": tokens,
        "steps": trainer.state.global_step,
        "loss": held_out_loss(trainer.model, tokenizer, viggo(64, skip=4000), args.seq),
        "device": device,
        "gradient_checkpointing": bool(config.gradient_checkpointing),
        "sampling": config.train_sampling_strategy,
        "completion_only_loss": bool(config.completion_only_loss) and fair,
    }


def worker(which: str, args: argparse.Namespace) -> None:
    import django

    django.setup()
    with tempfile.TemporaryDirectory() as tmp:
        if which == "ours":
            result = run_ours(args, Path(tmp))
        else:
            result = run_trl(args, Path(tmp), fair=which == "trl")
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result))


TRAINERS = {"ours": "shikomi", "trl": "trl sft", "trl-defaults": "trl default"}


def run_worker(which: str) -> dict:
    command = [sys.executable, __file__, "--worker", which, *sys.argv[1:]]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        print(done.stdout[-3000:], done.stderr[-3000:])
        raise SystemExit(f"the {which} run failed")
    result = json.loads(line[len("RESULT ") :])
    result["speed"] = result["tokens"] / result["seconds"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--base-model", default="")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds, the order reversed each round")
    parser.add_argument("--trl-defaults", action="store_true", help="add a row of TRL at its own defaults")
    parser.add_argument("--worker", choices=list(TRAINERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args)
        return
    if not VIGGO.is_file():
        print(f"{VIGGO} is missing: this benchmark needs ../shared/data/viggo (not part of the repository).")
        return
    order = ["ours", "trl", *(["trl-defaults"] if args.trl_defaults else [])]
    rounds: dict[str, list[dict]] = {which: [] for which in order}
    for number in range(args.rounds):
        for which in order if number % 2 == 0 else order[::-1]:
            rounds[which].append(run_worker(which))
    # Each trainer's median round by throughput (its loss is the same every round: same seed).
    results = {which: sorted(runs, key=lambda r: r["speed"])[len(runs) // 2] for which, runs in rounds.items()}
    ours, trl = results["ours"], results["trl"]
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {ours['device']}")
    print(
        f"# {args.examples} ViGGO examples, batch {args.batch_size}, seq {args.seq}, LoRA r={args.rank}, "
        f"lr {args.lr}, 1 epoch, {args.rounds} interleaved round(s), median shown; TRL: completion-only loss, "
        f"sampling={trl['sampling']}, gradient_checkpointing={trl['gradient_checkpointing']}"
    )
    print(
        f"{'trainer':<12} {'steps':>5} {'tokens':>7} {'seconds':>8} {'tokens/s':>9} {'spread':>13} "
        f"{'peak MiB':>9} {'held-out loss':>14}"
    )
    for which, r in results.items():
        speeds = [run["speed"] for run in rounds[which]]
        spread = f"{min(speeds):.0f}-{max(speeds):.0f}"
        print(
            f"{TRAINERS[which]:<12} {r['steps']:>5} {r['tokens']:>7} {r['seconds']:>8.1f} {r['speed']:>9.1f} "
            f"{spread:>13} {r['peak_rss_mib']:>9.0f} {r['loss']:>14.4f}"
        )
    ratio = statistics.median(r["speed"] for r in rounds["ours"]) / statistics.median(r["speed"] for r in rounds["trl"])
    print(
        f"throughput ratio shikomi / trl (same work, medians): {ratio:.2f}x; "
        f"loss {'equal or better' if ours['loss'] <= trl['loss'] + 1e-3 else 'worse'} "
        f"({ours['loss']:.4f} vs {trl['loss']:.4f})"
    )


if __name__ == "__main__":
    main()
