"""Draft generation with the embedded model: batched against one conversation at a time.

    .venv/bin/python bench/generate.py [--prompts 32] [--max-new-tokens 96] [--batch-sizes 8 16 32]

Builds N short draft-writing instructions (customer-support questions, summaries, code
snippets, rewrites, a few in Japanese), then, in one process after a warm-up, generates a
reply to each with ``llm.local.LocalBackend`` (the embedded SmolLM2-135M-Instruct,
greedy), first with ``batch_size=1`` and then with each batch size asked for.

Generated tokens are counted exactly: the new tokens of each reply up to and including its
end-of-sequence token, never the padding of a finished row. Greedy decoding gives both paths
the same work, except where left padding changes a float32 sum enough to flip a token; the
number of replies that differ from the one-at-a-time ones is printed. Figures are recorded in
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

INSTRUCTIONS = [
    "Write a question a customer might ask a coffee shop about a late delivery.",
    "Write a short customer-support question about a double charge on a credit card.",
    "Summarize in one sentence: The parcel left the warehouse on Monday, was delayed by a storm "
    "and reached the customer on Friday with a dented box.",
    "Write a Python function that returns the average of a list of numbers.",
    "Give three tips for brewing pour-over coffee at home.",
    "Rewrite politely: Your app is broken and I want my money back now.",
    "Write a SQL query that counts orders per customer.",
    "Explain what a refund is to a child, in two sentences.",
    "Write a question a user might ask about resetting a forgotten password.",
    "Summarize in one sentence: Our new grinder has 40 settings, a steel burr and a two-year "
    "warranty, and it costs 129 euros.",
    "Write a short reply thanking a customer for a five-star review.",
    "Write a JavaScript snippet that adds a click handler to a button.",
    "List four reasons a payment might be declined.",
    "Write a question a customer might ask about shipping to Canada.",
    "Translate to French: Your order has been shipped.",
    "Write a haiku about morning coffee.",
    "Write a customer-support question about changing a delivery address.",
    "Summarize in one sentence: The customer cannot log in because the reset email goes to an "
    "old address that no longer exists.",
    "Write a bash command that counts the lines of every .py file in a folder.",
    "Give a one-paragraph product description for a ceramic mug.",
    "Write a question a customer might ask about deleting their account and data.",
    "Explain the difference between a list and a tuple in Python.",
    "Write an apology for a damaged package, in three sentences.",
    "Write a regular expression that matches a Japanese postal code like 150-0001.",
    "Write a question about the opening hours of a café on public holidays.",
    "Summarize in one sentence: Support tickets rose 30% in March, mostly about delayed parcels, "
    "and fell again in April after the new carrier started.",
    "Write a short FAQ answer: how long does a refund take?",
    "配達が遅れていることについて、お客様が問い合わせる質問を書いてください。",
    "次の文を一文で要約してください：注文した豆が届きましたが、種類が違っていました。",
    "コーヒー豆の保存方法について短く説明してください。",
    "パスワードを忘れたお客様への返信を丁寧に書いてください。",
    "Write a Python list comprehension that keeps the even numbers of a list.",
]


def conversations(count: int) -> list[list[dict[str, str]]]:
    prompts = [INSTRUCTIONS[i % len(INSTRUCTIONS)] for i in range(count)]
    return [[{"role": "user", "content": prompt}] for prompt in prompts]


def run(backend, data, max_new_tokens: int) -> tuple[float, list[list[int]], list[str]]:
    """Seconds for the whole call, decoding included, the new token ids and the reply texts."""
    tokenizer, _model = backend.load()
    started = time.perf_counter()
    ids = backend.generate_token_ids(data, max_new_tokens=max_new_tokens)
    texts = [text.strip() for text in tokenizer.batch_decode(ids, skip_special_tokens=True)]
    return time.perf_counter() - started, ids, texts


def table_row(cells: list[str], widths: list[int]) -> str:
    """A Markdown table row: the first column left-aligned, the figures right-aligned."""
    padded = [cells[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
    return "| " + " | ".join(padded) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 16, 32])
    args = parser.parse_args()

    import django

    django.setup()
    import torch

    from llm.local import LocalBackend

    data = conversations(args.prompts)
    started = time.perf_counter()
    LocalBackend().load()
    load_s = time.perf_counter() - started
    # Warm-up: the first calls pay for lazy initialisation, not for generation.
    LocalBackend(batch_size=4).generate(data[:4], max_new_tokens=8)
    LocalBackend(batch_size=1).generate(data[:1], max_new_tokens=8)

    single_s, single_ids, single_texts = run(LocalBackend(batch_size=1), data, args.max_new_tokens)
    rows = [("one at a time", 1, single_s, sum(map(len, single_ids)), 0)]
    for size in args.batch_sizes:
        seconds, ids, texts = run(LocalBackend(batch_size=size), data, args.max_new_tokens)
        differ = sum(a != b for a, b in zip(texts, single_texts, strict=True))
        rows.append(("batched", size, seconds, sum(map(len, ids)), differ))

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, ", end="")
    print(f"{torch.get_num_threads()} threads, Python {platform.python_version()}")
    print(f"model loaded in {load_s:.1f} s; {len(data)} drafts, greedy, max_new_tokens={args.max_new_tokens}")
    print()
    header = ["mode", "batch", "drafts", "seconds", "drafts/s", "new tokens", "tokens/s", "ratio", "differ"]
    widths = [13, 5, 6, 7, 8, 10, 8, 5, 6]
    print(table_row(header, widths))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for mode, size, seconds, tokens, differ in rows:
        cells = [
            mode,
            str(size),
            str(len(data)),
            f"{seconds:.1f}",
            f"{len(data) / seconds:.2f}",
            f"{tokens:,}",
            f"{tokens / seconds:.1f}",
            f"{single_s / seconds:.1f}x",
            "-" if size == 1 else f"{differ}/{len(data)}",
        ]
        print(table_row(cells, widths))
    print()
    best = max(rows[1:], key=lambda row: single_s / row[2], default=None)
    if best is not None:
        print(f"best: batch size {best[1]}, {single_s / best[2]:.1f}x the one-at-a-time drafts per second")


if __name__ == "__main__":
    main()
