"""Shikomi's trainer against TRL's SFTTrainer at its defaults: same model, same data, same steps.

    .venv/bin/python bench/train.py [--examples 128] [--batch-size 8] [--seq 256] [--rank 8]

Data: ViGGO (../shared/data/viggo/train.csv, meaning representation -> sentence) as chat
examples, the kind of form-teaching task fine-tuning is for; without ../shared the script says so
and stops. Model: the embedded SmolLM2-135M-Instruct (or --base-model FOLDER), LoRA on the
attention projections, the same rank, alpha, learning rate, batch size, sequence length and one
epoch for both. Everything else is each trainer's own default: TRL's SFTTrainer keeps its
defaults (padding to the longest of randomly drawn batches, loss on every token, gradient
checkpointing on; bf16 is switched off only because transformers refuses it on a CPU); ours
groups batches by length, computes logits only where the loss is taken and trains on the
assistant tokens only.

A third row runs TRL with `gradient_checkpointing=False` (its one default that trades speed for
memory), so the comparison also holds against TRL without that handicap.

Each trainer runs in a subprocess of its own, so peak memory (max RSS) is its own. Throughput
is input tokens (no padding) per second of the training loop: model loading and data
preparation are excluded for both (ours: from its first step to its last; TRL: `train_runtime`).
Loss is measured the same way for both afterwards: the mean loss on the assistant tokens of 64
held-out examples, so "equal or better loss" compares like with like. Figures go in
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import csv
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


def run_trl(args: argparse.Namespace, out: Path, *, checkpointing: bool = True) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    from training.engine.dpo import _drop_gguf_marker
    from training.engine.modeling import load_base

    tokenizer, model, device = load_base(args.base_model, method="full")
    _drop_gguf_marker(model)  # transformers' Trainer refuses a model still marked as GGUF-quantised
    conversations = viggo(args.examples)
    dataset = Dataset.from_list([{"messages": m} for m in conversations])
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
        # TRL defaults to bf16, which transformers refuses on a CPU; the one default changed here.
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
        **({} if checkpointing else {"gradient_checkpointing": False}),
    )
    peft_config = LoraConfig(
        r=args.rank,
        lora_alpha=2 * args.rank,
        lora_dropout=0.0,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
        task_type="CAUSAL_LM",
    )
    trainer = SFTTrainer(
        model=model, args=config, train_dataset=dataset, processing_class=tokenizer, peft_config=peft_config
    )
    tokens = sum(len(row["input_ids"]) for row in trainer.train_dataset)
    metrics = trainer.train().metrics
    return {
        "seconds": metrics["train_runtime"],
        "tokens": tokens,
        "steps": trainer.state.global_step,
        "loss": held_out_loss(trainer.model, tokenizer, viggo(64, skip=4000), args.seq),
        "device": device,
        "gradient_checkpointing": bool(getattr(config, "activation_checkpointing", config.gradient_checkpointing)),
        "padding_free": bool(getattr(config, "padding_free", False)),
        "packing": bool(config.packing),
    }


def worker(which: str, args: argparse.Namespace) -> None:
    import django

    django.setup()
    with tempfile.TemporaryDirectory() as tmp:
        if which == "ours":
            result = run_ours(args, Path(tmp))
        else:
            result = run_trl(args, Path(tmp), checkpointing=which == "trl")
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--base-model", default="")
    parser.add_argument("--worker", choices=["ours", "trl", "trl-nockpt"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args)
        return
    if not VIGGO.is_file():
        print(f"{VIGGO} is missing: this benchmark needs ../shared/data/viggo (not part of the repository).")
        return
    results = {}
    for which in ("ours", "trl", "trl-nockpt"):
        command = [sys.executable, __file__, "--worker", which, *sys.argv[1:]]
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            print(done.stdout[-3000:], done.stderr[-3000:])
            raise SystemExit(f"the {which} run failed")
        results[which] = json.loads(line[len("RESULT ") :])
    ours, trl, bare = results["ours"], results["trl"], results["trl-nockpt"]
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {ours['device']}")
    print(
        f"# {args.examples} ViGGO examples, batch {args.batch_size}, seq {args.seq}, LoRA r={args.rank}, "
        f"lr {args.lr}, 1 epoch; TRL defaults: gradient_checkpointing={trl['gradient_checkpointing']}, "
        f"packing={trl['packing']}, padding_free={trl['padding_free']}"
    )
    print(
        f"{'trainer':<10} {'steps':>5} {'tokens':>7} {'seconds':>8} {'tokens/s':>9} {'peak MiB':>9} "
        f"{'held-out loss':>14}"
    )
    for name, r in (("shikomi", ours), ("trl sft", trl), ("trl no-gc", bare)):
        speed = r["tokens"] / r["seconds"]
        r["speed"] = speed
        print(
            f"{name:<10} {r['steps']:>5} {r['tokens']:>7} {r['seconds']:>8.1f} {speed:>9.1f} "
            f"{r['peak_rss_mib']:>9.0f} {r['loss']:>14.4f}"
        )
    print(
        f"throughput ratio shikomi / trl without gradient checkpointing: {ours['speed'] / bare['speed']:.2f}x "
        f"(held-out loss {bare['loss']:.4f})"
    )
    print(
        f"throughput ratio shikomi / trl at its defaults: {ours['speed'] / trl['speed']:.2f}x; "
        f"loss {'equal or better' if ours['loss'] <= trl['loss'] + 1e-3 else 'worse'} "
        f"({ours['loss']:.4f} vs {trl['loss']:.4f})"
    )


if __name__ == "__main__":
    main()
