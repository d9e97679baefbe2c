"""The vectorised rule applier against Snorkel's PandasLFApplier, same rules, same data.

    .venv/bin/python bench/rules.py [--rows 100000] [--repeat 3]

Builds N synthetic support conversations and 20 rules (12 keyword rules, 8 regular
expressions, three labels, overlapping and conflicting), then:

- Snorkel: the same 20 rules written as Snorkel labeling functions, the way a Snorkel user
  writes them (plain Python on one row: ``re.search`` on the row's text), applied by
  ``PandasLFApplier`` to a DataFrame whose text columns are already built (in its favour);
- Shikomi: ``curation.rules.engine.apply_rules`` on the conversations themselves (building
  the texts from the messages is inside the timing).

The two label matrices must be identical (asserted). Prints both times and the ratio.
Figures are recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

BILLING, SHIPPING, ACCOUNT = 0, 1, 2

OPENERS = ["Hi,", "Hello!", "Hey there.", "Good morning.", "こんにちは。", "Dear Kumo team,", ""]
TOPICS = [
    "I was charged twice for order #{n} and need a refund",
    "my invoice {n} shows the wrong amount",
    "where is my parcel? tracking number JP{n}00 has not moved",
    "the package arrived late and the box was damaged",
    "I cannot log in, the password reset email never arrives",
    "please delete my account and my data",
    "can I change the delivery address for order #{n}?",
    "the grinder I bought is broken, can I return it?",
    "do you ship to Canada? what does shipping cost",
    "my card was declined but the payment went through",
    "how do I update my email address on my account",
    "I love the new single origin beans, thanks!",
    "call me at 090-1234-{n4}, it is urgent",
    "Visit http://cheap-beans.example.com/{n} for discount coffee",
]
CLOSERS = ["Thanks.", "Regards, Aiko", "Please help!!!", "", "ASAP please", "よろしくお願いします。"]


def conversations(rows: int, seed: int = 7) -> list[list[dict[str, str]]]:
    rng = random.Random(seed)
    result = []
    for i in range(rows):
        topic = rng.choice(TOPICS).format(n=i, n4=str(i % 10000).zfill(4))
        extra = rng.choice(TOPICS).format(n=i + 1, n4="0000") if rng.random() < 0.25 else ""
        user = " ".join(part for part in (rng.choice(OPENERS), topic, extra, rng.choice(CLOSERS)) if part)
        assistant = rng.choice(
            [
                "I have refunded the duplicate charge.",
                "I asked the carrier to trace the parcel.",
                "I sent a new password reset link.",
                "Sorry about that, a replacement is on its way.",
            ]
        )
        result.append([{"role": "user", "content": user}, {"role": "assistant", "content": assistant}])
    return result


def rules():
    from curation.rules import spec as S
    from curation.rules.spec import RuleSpec, clean_params

    raw = [
        (S.KEYWORDS, BILLING, S.USER, {"keywords": ["refund", "refunded"]}),
        (S.KEYWORDS, BILLING, S.USER, {"keywords": ["invoice", "receipt"]}),
        (S.KEYWORDS, BILLING, S.USER, {"keywords": ["charged", "charge"]}),
        (S.KEYWORDS, BILLING, S.USER, {"keywords": ["card", "declined"], "mode": "all"}),
        (S.KEYWORDS, BILLING, S.USER, {"keywords": ["payment"]}),
        (S.KEYWORDS, SHIPPING, S.USER, {"keywords": ["parcel", "package", "box"]}),
        (S.KEYWORDS, SHIPPING, S.USER, {"keywords": ["tracking"]}),
        (S.KEYWORDS, SHIPPING, S.USER, {"keywords": ["delivery", "address"], "mode": "all"}),
        (S.KEYWORDS, SHIPPING, S.BOTH, {"keywords": ["carrier", "ship", "shipping"]}),
        (S.KEYWORDS, ACCOUNT, S.USER, {"keywords": ["password", "log in", "login"]}),
        (S.KEYWORDS, ACCOUNT, S.USER, {"keywords": ["account"]}),
        (S.KEYWORDS, ACCOUNT, S.USER, {"keywords": ["Email"], "case_sensitive": True}),
        (S.REGEX, BILLING, S.USER, {"pattern": r"order #\d+"}),
        (S.REGEX, SHIPPING, S.USER, {"pattern": r"\bJP\d{3,}\b", "case_sensitive": True}),
        (S.REGEX, BILLING, S.USER, {"pattern": r"wrong (amount|price|total)"}),
        (S.REGEX, SHIPPING, S.USER, {"pattern": r"arrived (late|damaged|broken)"}),
        (S.REGEX, ACCOUNT, S.USER, {"pattern": r"reset (email|link)"}),
        (S.REGEX, ACCOUNT, S.USER, {"pattern": r"\d{3}-\d{4}-\d{4}"}),
        (S.REGEX, SHIPPING, S.USER, {"pattern": r"https?://[\w.-]+"}),
        (S.REGEX, BILLING, S.ASSISTANT, {"pattern": r"refund(ed)? the"}),
    ]
    return [
        RuleSpec(f"r{i}", kind, label, target, clean_params(kind, p)) for i, (kind, label, target, p) in enumerate(raw)
    ]


def snorkel_lfs(specs):
    """The same rules as Snorkel labeling functions, written as a Snorkel user would."""
    from snorkel.labeling import LabelingFunction

    from curation.rules import spec as S

    lfs = []
    for rule in specs:
        p, column, vote = rule.params, f"text_{rule.target}", rule.label
        if rule.kind == S.KEYWORDS:
            flags = 0 if p["case_sensitive"] else re.IGNORECASE
            found = [
                re.compile(rf"(?<!\w){re.escape(k)}(?!\w)" if p["whole_word"] else re.escape(k), flags)
                for k in p["keywords"]
            ]
            combine = all if p["mode"] == "all" else any

            def f(x, found=found, combine=combine, column=column, vote=vote):
                return vote if combine(r.search(x[column]) for r in found) else -1
        else:
            compiled = re.compile(p["pattern"], 0 if p["case_sensitive"] else re.IGNORECASE)

            def f(x, compiled=compiled, column=column, vote=vote):
                return vote if compiled.search(x[column]) else -1

        lfs.append(LabelingFunction(name=str(rule.key), f=f))
    return lfs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of our applier; the best is reported")
    args = parser.parse_args()

    import django

    django.setup()
    import numpy as np
    import pandas as pd
    from snorkel.labeling import PandasLFApplier

    from curation.rules.engine import Corpus, apply_rules, target_text

    data = conversations(args.rows)
    specs = rules()
    frame = pd.DataFrame({f"text_{t}": [target_text(m, t) for m in data] for t in ("user", "assistant", "both")})

    started = time.perf_counter()
    expected = PandasLFApplier(snorkel_lfs(specs)).apply(frame, progress_bar=False)
    snorkel_s = time.perf_counter() - started

    ours = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        got = apply_rules(specs, Corpus(data))
        ours.append(time.perf_counter() - started)
    ours_s = min(ours)

    identical = np.array_equal(got, expected)
    coverage = float((got != -1).any(axis=1).mean())
    conflicts = float(np.mean([len(set(r[r != -1])) > 1 for r in got]))
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(
        f"{args.rows:,} examples, {len(specs)} rules (12 keyword, 8 regex); coverage {coverage:.0%}, "
        f"conflicting {conflicts:.0%}, votes {int((got != -1).sum()):,}"
    )
    print()
    print(f"| {'applier':<34} | {'seconds':>8} | {'rows/s':>10} |")
    print(f"|{'-' * 36}|{'-' * 10}|{'-' * 12}|")
    print(f"| {'Snorkel PandasLFApplier':<34} | {snorkel_s:8.2f} | {args.rows / snorkel_s:10,.0f} |")
    ours_name = f"Shikomi apply_rules (best of {args.repeat})"
    print(f"| {ours_name:<34} | {ours_s:8.2f} | {args.rows / ours_s:10,.0f} |")
    print()
    print(f"ratio (Snorkel / Shikomi): {snorkel_s / ours_s:.1f}x   identical matrices: {identical}")
    assert identical, "the label matrices differ"


if __name__ == "__main__":
    main()
