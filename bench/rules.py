"""The vectorised rule applier against the fastest plain alternatives, same rules, same data.

    .venv/bin/python bench/rules.py [--rows 100000] [--repeat 3]

Builds N synthetic support conversations (English and Japanese, with metadata) and 28 rules
(12 keyword rules, 8 regular expressions, 2 length, 3 metadata (one equality, one keyword list
on a list field, one regex), 1 similarity, 2 combinations; three labels, overlapping and
conflicting), then applies them four ways, interleaved (each round runs all four, in a
rotating order, so load from other work on the machine falls on all of them alike):

- Snorkel ``LFApplier``: the rules written as Snorkel labeling functions, the way a Snorkel
  user writes them (``re.search`` with Python's ``re`` on one row), over a list of rows whose
  texts are already built and width-folded (in its favour). ``LFApplier`` is the plain loop
  under ``PandasLFApplier``, without pandas' row objects: the faster of the two;
- pandas: one vectorised column operation per rule (``Series.str.contains`` with the same
  ``re`` pattern, ``str.len``, ``map``, numpy for similarity and combinations), on the same
  prepared columns;
- Shikomi: ``curation.rules.engine.apply_rules`` on the texts its rule-text store keeps for
  each example (``example_texts``: built and width-folded once, as pandas' columns are; the
  store fills itself on a project's first run, curation/rules/textstore.py). Metadata fields
  are read from the metadata inside its time, where pandas is given them as columns;
- Shikomi building the texts from the conversations inside its time (a project's first run).

Similarity is cosine similarity of hashed bag-of-words count vectors to three prototypes,
computed the same way by all four (the vectors and their lengths, like the app's cached
embeddings, are built beforehand). Compiled patterns are cached per process by ``re`` for the
plain ways and by Shikomi for itself; one small run before timing fills the caches. The four
label matrices must be identical (asserted). Prints the best time of each (wall clock and
this process's CPU time) and the ratios. Figures are recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import sys
import time
import unicodedata
import warnings
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Every applier on one core: the plain ways' Python is single-threaded, and a BLAS thread
# pool left spinning after the similarity rule would count as CPU time of whoever ran it.
for _threads in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_threads, "1")

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


def conversations(rows: int, seed: int = 7) -> tuple[list[list[dict[str, str]]], list[dict]]:
    rng = random.Random(seed)
    result, metadata = [], []
    for i in range(rows):
        topic = rng.choice(TOPICS).format(n=i, n4=str(i % 10000).zfill(4))
        extra = rng.choice(TOPICS).format(n=i + 1, n4="0000") if rng.random() < 0.25 else ""
        if rng.random() < 0.1:  # typed on a Japanese keyboard: full-width Latin and digits
            topic = unicodedata.normalize("NFKC", topic).translate(FULL_WIDTH)
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
        metadata.append(
            {
                "channel": rng.choice(["email", "chat", "phone", "Email"]),
                "tags": rng.sample(["vip", "返品", "new", "repeat", "B2B"], rng.randint(0, 2)),
                "priority": rng.randint(1, 9),
            }
        )
    return result, metadata


FULL_WIDTH = {code: code + 0xFEE0 for code in range(0x21, 0x7F)}
DIMENSIONS = 256
PROTOTYPES = [
    "I was charged twice for my order and need a refund",
    "my card was declined but the payment went through",
    "the invoice shows the wrong amount",
]


def bag_of_words(text: str) -> list[int]:
    """Hashed word counts: integers, so every applier computes the same cosine to the bit."""
    vector = [0] * DIMENSIONS
    for word in re.findall(r"\w+", unicodedata.normalize("NFKC", text).lower()):
        vector[zlib.crc32(word.encode()) % DIMENSIONS] += 1
    return vector


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
        (S.KEYWORDS, ACCOUNT, S.USER, {"keywords": ["account", "よろしく"]}),
        (S.KEYWORDS, ACCOUNT, S.USER, {"keywords": ["Email"], "case_sensitive": True}),
        (S.REGEX, BILLING, S.USER, {"pattern": r"order #\d+"}),
        (S.REGEX, SHIPPING, S.USER, {"pattern": r"\bJP\d{3,}\b", "case_sensitive": True}),
        (S.REGEX, BILLING, S.USER, {"pattern": r"wrong (amount|price|total)"}),
        (S.REGEX, SHIPPING, S.USER, {"pattern": r"arrived (late|damaged|broken)"}),
        (S.REGEX, ACCOUNT, S.USER, {"pattern": r"reset (email|link)"}),
        (S.REGEX, ACCOUNT, S.USER, {"pattern": r"\d{3}-\d{4}-\d{4}"}),
        (S.REGEX, SHIPPING, S.USER, {"pattern": r"https?://[\w.-]+"}),
        (S.REGEX, BILLING, S.ASSISTANT, {"pattern": r"refund(ed)? the"}),
        (S.LENGTH, ACCOUNT, S.USER, {"unit": "words", "max": 8}),
        (S.LENGTH, BILLING, S.USER, {"unit": "chars", "min": 120}),
        (S.METADATA, ACCOUNT, S.USER, {"key": "channel", "op": "equals", "value": "phone"}),
        (S.METADATA, BILLING, S.USER, {"key": "tags", "op": "keywords", "keywords": ["返品", "VIP"]}),
        (S.METADATA, SHIPPING, S.USER, {"key": "channel", "op": "regex", "pattern": r"^e\w+l$"}),
        (S.SIMILARITY, BILLING, S.USER, {"threshold": 0.5}),
        (S.COMBINE, SHIPPING, S.USER, {"op": "and", "rules": [5, 24]}),
        (S.COMBINE, ACCOUNT, S.USER, {"op": "not", "rules": [0]}),
    ]
    return [RuleSpec(i, kind, label, target, clean_params(kind, p)) for i, (kind, label, target, p) in enumerate(raw)]


# --- the plain ways: Python's re on one row (Snorkel), one column at a time (pandas) ----------

NON_CJK_WORD = None  # set in main(): [^\W<CJK>], a word character that is not Chinese, Japanese, Korean


def keyword_regex(keyword: str, p: dict) -> str:
    keyword = unicodedata.normalize("NFKC", keyword) if p["fold_width"] else keyword
    left = p["whole_word"] and re.match(NON_CJK_WORD, keyword[0])
    right = p["whole_word"] and re.match(NON_CJK_WORD, keyword[-1])
    return (f"(?<!{NON_CJK_WORD})" if left else "") + re.escape(keyword) + (f"(?!{NON_CJK_WORD})" if right else "")


def searches(p: dict) -> list[re.Pattern]:
    """A keyword or regex rule as Python re patterns (all must match), on folded text."""
    flags = 0 if p["case_sensitive"] else re.IGNORECASE
    if "keywords" in p:
        found = [keyword_regex(k, p) for k in p["keywords"]]
        return [re.compile("|".join(found), flags)] if p["mode"] == "any" else [re.compile(f, flags) for f in found]
    return [re.compile(unicodedata.normalize("NFKC", p["pattern"]), flags)]


def cosine_votes(vectors, norms, prototypes, threshold):
    """Whether each vector's cosine to some prototype reaches the threshold. ``norms`` are the
    vectors' squared lengths, stored with them (the app stores its embeddings normalised);
    prototypes are ``(vectors, squared lengths)``. Integer counts make every product exact, so
    every applier decides alike to the bit."""
    import numpy as np

    dots = vectors @ prototypes[0].T
    lengths = np.sqrt(norms[:, None] * prototypes[1][None, :])
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.where(lengths > 0, dots / lengths, 0.0) >= threshold).any(axis=1)


def snorkel_lfs(specs, prototypes):
    """The rules as Snorkel labeling functions, written as a Snorkel user would."""
    from snorkel.labeling import LabelingFunction

    from curation.rules import spec as S
    from curation.rules.engine import metadata_matches

    lfs = []
    for rule in specs:
        p, column, vote = rule.params, f"text_{rule.target}", rule.label
        if rule.kind in (S.KEYWORDS, S.REGEX) or (rule.kind == S.METADATA and p["op"] in ("keywords", "regex")):
            found = searches(p)
            column = f"field_{p['key']}" if rule.kind == S.METADATA else column

            def f(x, found=found, column=column, vote=vote):
                text = x[column]
                return vote if text is not None and all(r.search(text) for r in found) else -1
        elif rule.kind == S.LENGTH:

            def f(x, p=p, vote=vote):
                n = len(x["text_user"]) if p["unit"] == "chars" else len(x["text_user"].split())
                ok = (p["min"] is None or n >= p["min"]) and (p["max"] is None or n <= p["max"])
                return vote if ok else -1
        elif rule.kind == S.METADATA:

            def f(x, p=p, vote=vote):
                return vote if metadata_matches(p, x["metadata"]) else -1
        elif rule.kind == S.SIMILARITY:

            def f(x, p=p, vote=vote):
                hit = cosine_votes(x["vector"][None, :], x["norm"][None], prototypes, p["threshold"])[0]
                return vote if hit else -1
        else:
            operands = [lfs[key] for key in p["rules"]]
            holds = {"and": all, "or": any, "not": lambda votes: not next(iter(votes))}[p["op"]]

            def f(x, operands=operands, holds=holds, vote=vote):
                return vote if holds(lf(x) != -1 for lf in operands) else -1

        lfs.append(LabelingFunction(name=str(rule.key), f=f))
    return lfs


def pandas_apply(specs, frame, vectors, norms, prototypes):
    """One vectorised pandas (or numpy) operation per rule."""
    import numpy as np

    from curation.rules import spec as S
    from curation.rules.engine import metadata_matches

    L = np.full((len(frame), len(specs)), -1, dtype=np.int64)
    holds = {}
    for j, rule in enumerate(specs):
        p = rule.params
        if rule.kind in (S.KEYWORDS, S.REGEX) or (rule.kind == S.METADATA and p["op"] in ("keywords", "regex")):
            column = frame[f"field_{p['key']}" if rule.kind == S.METADATA else f"text_{rule.target}"]
            voted = np.ones(len(frame), dtype=bool)
            for pattern in searches(p):
                voted &= column.str.contains(pattern, na=False).to_numpy(dtype=bool)
        elif rule.kind == S.LENGTH:
            text = frame["text_user"]
            n = (text.str.len() if p["unit"] == "chars" else text.str.split().str.len()).to_numpy()
            voted = (n >= (p["min"] or 0)) & (n <= (p["max"] if p["max"] is not None else np.inf))
        elif rule.kind == S.METADATA:
            voted = frame["metadata"].map(lambda m, p=p: metadata_matches(p, m)).to_numpy(dtype=bool)
        elif rule.kind == S.SIMILARITY:
            voted = cosine_votes(vectors, norms, prototypes, p["threshold"])
        else:
            parts = [holds[key] for key in p["rules"]]
            voted = (
                ~parts[0]
                if p["op"] == "not"
                else np.logical_and.reduce(parts)
                if p["op"] == "and"
                else np.logical_or.reduce(parts)
            )
        holds[rule.key] = voted
        L[voted, j] = rule.label
    return L


def prepared(data, metadata, specs):
    """What the plain ways start from: built, width-folded texts (and metadata fields)."""
    import pandas as pd

    from curation.rules import spec as S
    from curation.rules.engine import field_text, target_text

    fold = lambda t: unicodedata.normalize("NFKC", t)  # noqa: E731
    columns = {f"text_{t}": [fold(target_text(m, t)) for m in data] for t in ("user", "assistant", "both")}
    for key in {r.params["key"] for r in specs if r.kind == S.METADATA}:
        columns[f"field_{key}"] = [None if (v := field_text(m, key)) is None else fold(v) for m in metadata]
    columns["metadata"] = metadata
    return pd.DataFrame(columns)


def timed(fn):
    """Wall-clock seconds, CPU seconds of this process, and the result. On a machine shared
    with other work the CPU time moves less than the wall clock."""
    started, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - started, time.process_time() - cpu, result


SHIKOMI = "Shikomi apply_rules"
FROM_MESSAGES = "Shikomi, building the texts"


def run(args) -> None:
    import numpy as np
    from snorkel.labeling import LFApplier

    from curation.rules.engine import Corpus, apply_rules, example_texts, stored_corpus

    data, metadata = conversations(args.rows)
    specs = rules()
    frame = prepared(data, metadata, specs)
    rows = frame.to_dict("records")
    # float32, as the app stores its embeddings; counts stay exact in it.
    vectors = np.array([bag_of_words(t) for t in frame["text_user"]], dtype=np.float32)
    norms = np.einsum("ij,ij->i", vectors, vectors, dtype=np.float64)
    for row, vector, norm in zip(rows, vectors, norms, strict=True):
        row["vector"], row["norm"] = vector, norm
    prototype_vectors = np.array([bag_of_words(t) for t in PROTOTYPES], dtype=np.float32)
    prototypes = (prototype_vectors, np.einsum("ij,ij->i", prototype_vectors, prototype_vectors, dtype=np.float64))
    # What Shikomi's rule-text store holds for these examples (curation/rules/textstore.py):
    # the texts built and folded once, as pandas' columns are.
    stored = [example_texts(m) for m in data]

    def similarity(rule, corpus):
        # A corpus is a run of consecutive examples here: their vectors are a slice, not a copy.
        first = corpus.ids[0]
        assert corpus.ids == range(first, first + len(corpus))
        part = slice(first, first + len(corpus))
        return cosine_votes(vectors[part], norms[part], prototypes, rule.params["threshold"])

    ids = range(len(data))
    appliers = {
        "Snorkel LFApplier": lambda: LFApplier(snorkel_lfs(specs, prototypes)).apply(rows, progress_bar=False),
        "pandas str.contains per rule": lambda: pandas_apply(specs, frame, vectors, norms, prototypes),
        SHIKOMI: lambda: apply_rules(specs, stored_corpus(stored, metadata, ids), similarity=similarity),
        FROM_MESSAGES: lambda: apply_rules(specs, Corpus(data, metadata, ids), similarity=similarity),
    }
    # Translating and compiling the patterns (scanning Unicode once for \\w, \\d, \\s and case)
    # is a one-time cost of the worker process, cached afterwards, as re caches its patterns for
    # pandas and Snorkel: pay it before timing.
    apply_rules(specs, Corpus(data[:100], metadata[:100], ids[:100]), similarity=similarity)
    times: dict[str, list[float]] = {name: [] for name in appliers}
    cpu: dict[str, list[float]] = {name: [] for name in appliers}
    matrices = {}
    names = list(appliers)
    for round_ in range(args.repeat):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            seconds, used, matrices[name] = timed(appliers[name])
            times[name].append(seconds)
            cpu[name].append(used)
    report(args, specs, times, cpu, matrices)


def report(args, specs, times, cpu, matrices) -> None:
    import numpy as np

    ours = matrices[SHIKOMI]
    identical = all(np.array_equal(m, ours) for m in matrices.values())
    best = {name: min(t) for name, t in times.items()}
    best_cpu = {name: min(t) for name, t in cpu.items()}
    coverage = float((ours != -1).any(axis=1).mean())
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(
        f"{args.rows:,} examples, {len(specs)} rules (12 keyword, 8 regex, 2 length, 3 metadata, 1 similarity, "
        f"2 combinations); coverage {coverage:.0%}, votes {int((ours != -1).sum()):,}"
    )
    print(
        f"interleaved: {args.repeat} rounds, best of each; all times (wall): "
        + "; ".join(f"{n}: {', '.join(f'{s:.2f}' for s in t)}" for n, t in times.items())
    )
    print()
    print(f"| {'applier':<30} | {'seconds':>8} | {'rows/s':>10} | {'Shikomi is':>11} | {'CPU s':>6} | {'(CPU)':>6} |")
    print(f"|{'-' * 32}|{'-' * 10}|{'-' * 12}|{'-' * 13}|{'-' * 8}|{'-' * 8}|")
    for name, seconds in best.items():
        ratio, ratio_cpu = seconds / best[SHIKOMI], best_cpu[name] / best_cpu[SHIKOMI]
        print(
            f"| {name:<30} | {seconds:8.2f} | {args.rows / seconds:10,.0f} | {ratio:10.1f}x "
            f"| {best_cpu[name]:6.2f} | {ratio_cpu:5.1f}x |"
        )
    print()
    print(f"identical matrices (all four): {identical}")
    assert identical, "the label matrices differ"


def main() -> None:
    global NON_CJK_WORD
    warnings.filterwarnings("ignore", message="This pattern is interpreted as a regular expression")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds; the best of each is reported")
    args = parser.parse_args()

    import django

    django.setup()
    from text.cjk import CJK_CLASS

    NON_CJK_WORD = rf"[^\W{CJK_CLASS}]"
    run(args)


if __name__ == "__main__":
    main()
