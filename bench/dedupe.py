"""Near-duplicate detection on 100,000 examples against a plain datasketch loop.

    .venv/bin/python bench/dedupe.py [--rows 100000] [--threshold 0.8] [--peer-sample 2000]

Builds N chat-sized examples (20 to 200 words) from the public data in ../shared/data:
random sentences of Tiny Shakespeare, ViGGO, YouTube comments and the KTO demo
conversations, and (one in twenty-five) of the Japanese instructions and answers (60 to
400 characters). Each text takes at least four sentences drawn from tens of thousands,
so two base texts share almost nothing. Then 5% of the rows are planted near duplicates
of distinct base rows: 70% with random word edits (deletions, insertions, substitutions,
swaps of 0.5% to 5% of the words; true Jaccard 0.73 to 0.95 for nine in ten of them),
15% exact copies and 15% with only case, punctuation and whitespace changed. The true
Jaccard of each planted pair is computed from Python sets of token tuples, independently
of the hashing under test.

- Shikomi: ``curation.quality.near_dupes.find_pairs`` on all N texts (normalising,
  shingling, signatures, LSH, exact verification: all inside the timing);
- datasketch: the loop a datasketch user writes (a ``MinHash`` per text fed its shingles,
  ``MinHashLSH.insert``, then ``query`` for each), same shingles, same bands and rows,
  timed on a sample and extrapolated linearly to N; once with ``update_batch`` and once
  with ``update`` per shingle as in datasketch's README. It does not verify its
  candidates (in its favour).

Recall counts the planted pairs whose true Jaccard reaches the threshold. Skips cleanly
when the data is absent. Figures are recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import re
import string
import sys
import time
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = ROOT.parent / "shared" / "data"

PLANTED_SHARE = 0.05
JAPANESE_SHARE = 0.04
# Punctuation only: $ + < = > ^ ` | ~ are symbols, which normalising keeps.
ASCII_PUNCTUATION = {ord(c): None for c in string.punctuation if unicodedata.category(c).startswith("P")}


def english_lines(data: Path) -> list[str]:
    lines = (data / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8").splitlines()
    for name in ("train.csv", "valid.csv", "test.csv"):
        with open(data / "viggo" / name, encoding="utf-8", newline="") as f:
            lines.extend(record["ref"] for record in csv.DictReader(f))
    for path in sorted((data / "youtube_spam").glob("Youtube0*.csv")):
        with open(path, encoding="utf-8", newline="") as f:
            lines.extend(record["CONTENT"] for record in csv.DictReader(f))
    for record in json.loads((data / "chat" / "kto_en_demo.json").read_text(encoding="utf-8")):
        lines.extend(message["content"] for message in record["messages"])
    sentences = {part.strip() for line in lines for part in re.split(r"(?<=[.!?])\s+|\n+", line)}
    # Speaker names are too short and too common to tell texts apart, and one long comment
    # would make every text it lands in a near duplicate of the others that drew it.
    return sorted(s for s in sentences if 3 <= len(s.split()) <= 30)


def japanese_sentences(data: Path) -> list[str]:
    sentences = set()
    for name in ("ja_alpaca_seed_175.json", "ja_amenokaku_python_alpaca.json"):
        for record in json.loads((data / "japanese_instructions" / name).read_text(encoding="utf-8")):
            for part in (record["instruction"], record["input"], record["output"]):
                sentences.update(s.strip() for s in re.split(r"(?<=[。！？])|\n+", part))
    from text.cjk import has_cjk

    return sorted(s for s in sentences if 8 <= len(s) <= 80 and has_cjk(s))


def base_texts(count: int, english: list[str], japanese: list[str], rng: random.Random) -> list[str]:
    """Random sentences, at least four a text, so no two texts share most of their content."""
    texts = []
    for _ in range(count):
        if rng.random() < JAPANESE_SHARE:
            pool, target, size, joiner = japanese, rng.randint(60, 400), len, ""
        else:
            pool, target, size, joiner = english, rng.randint(20, 200), lambda s: len(s.split()), " "
        parts: list[str] = []
        while len(parts) < 4 or sum(map(size, parts)) < target:
            parts.append(rng.choice(pool))
        texts.append(joiner.join(parts))
    return texts


def edited(text: str, rng: random.Random, vocabulary: list[str]) -> str:
    """The text with 0.5% to 5% of its words (characters, for Japanese) deleted, inserted,
    substituted or swapped with the next."""
    from text.cjk import has_cjk

    japanese = has_cjk(text)
    units = list(text) if japanese else text.split()
    for _ in range(max(1, round(rng.uniform(0.005, 0.05) * len(units)))):
        at = rng.randrange(len(units))
        new = rng.choice(units) if japanese else rng.choice(vocabulary)
        match rng.choice(("delete", "insert", "substitute", "swap")):
            case "delete" if len(units) > 1:
                del units[at]
            case "insert":
                units.insert(at, new)
            case "swap" if at + 1 < len(units):
                units[at], units[at + 1] = units[at + 1], units[at]
            case _:
                units[at] = new
    return "".join(units) if japanese else " ".join(units)


def restyled(text: str, rng: random.Random) -> str:
    """Only case, punctuation and whitespace changed."""
    text = rng.choice((str.upper, str.lower, str.title))(text)
    if rng.random() < 0.5:
        text = text.translate(ASCII_PUNCTUATION)
    text = re.sub(r" ", lambda _: rng.choice((" ", " ", "  ", "\n")), text)
    return text + rng.choice(("", "!", "?!", " ..."))


def corpus(rows: int, data: Path, seed: int = 8) -> tuple[list[str], dict[tuple[int, int], str]]:
    """N texts, and the planted pairs (original, copy) by kind."""
    rng = random.Random(seed)
    english, japanese = english_lines(data), japanese_sentences(data)
    vocabulary = sorted({word for line in english for word in line.split()})
    planted = round(rows * PLANTED_SHARE)
    bases = base_texts(rows - planted, english, japanese, rng)
    texts, kinds = list(bases), []
    for original in rng.sample(range(len(bases)), planted):
        kind = rng.choices(("edited", "exact", "restyled"), weights=(70, 15, 15))[0]
        if kind == "edited":
            texts.append(edited(bases[original], rng, vocabulary))
        elif kind == "exact":
            texts.append(bases[original])
        else:
            texts.append(restyled(bases[original], rng))
        kinds.append((original, kind))
    order = list(range(len(texts)))
    rng.shuffle(order)
    position = {old: new for new, old in enumerate(order)}
    shuffled = [texts[old] for old in order]
    truth = {}
    for offset, (original, kind) in enumerate(kinds):
        a, b = sorted((position[original], position[len(bases) + offset]))
        truth[(a, b)] = kind
    return shuffled, truth


def shingle_set(text: str, ngram: int) -> set[tuple[str, ...]]:
    from curation.quality.near_dupes import tokens

    words = tokens(text)
    if len(words) < ngram:
        return {tuple(words)} if words else set()
    return {tuple(words[i : i + ngram]) for i in range(len(words) - ngram + 1)}


def true_jaccard(x: str, y: str, ngram: int) -> float:
    a, b = shingle_set(x, ngram), shingle_set(y, ngram)
    return len(a & b) / len(a | b) if a | b else 1.0


def datasketch_loop(texts: list[str], *, threshold: float, num_perm: int, ngram: int, batch: bool) -> float:
    """Seconds for the plain datasketch loop over these texts."""
    from datasketch import MinHash, MinHashLSH

    from curation.quality import near_dupes

    started = time.perf_counter()
    lsh = MinHashLSH(
        threshold=threshold,
        num_perm=num_perm,
        weights=(near_dupes.FALSE_POSITIVE_WEIGHT, near_dupes.FALSE_NEGATIVE_WEIGHT),
    )
    sketches = []
    for i, text in enumerate(texts):
        minhash = MinHash(num_perm=num_perm)
        shingles = [" ".join(gram).encode() for gram in shingle_set(text, ngram)]
        if batch:
            minhash.update_batch(shingles)
        else:
            for shingle in shingles:
                minhash.update(shingle)
        lsh.insert(i, minhash)
        sketches.append(minhash)
    for minhash in sketches:
        lsh.query(minhash)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--num-perm", type=int, default=128)
    parser.add_argument("--ngram", type=int, default=3)
    parser.add_argument("--peer-sample", type=int, default=2_000, help="texts the datasketch loop is timed on")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    if not (args.data / "tinyshakespeare" / "input.txt").exists():
        print(f"skipped: {args.data} has no Tiny Shakespeare (the shared public data)")
        return

    from curation.quality.near_dupes import find_pairs, lsh_params

    started = time.perf_counter()
    texts, truth = corpus(args.rows, args.data)
    built_s = time.perf_counter() - started
    bands, rows = lsh_params(args.threshold, args.num_perm)

    started = time.perf_counter()
    found = find_pairs(texts, threshold=args.threshold, num_perm=args.num_perm, ngram=args.ngram)
    ours_s = time.perf_counter() - started

    sample = texts[: args.peer_sample]
    peer = {
        batch: datasketch_loop(sample, threshold=args.threshold, num_perm=args.num_perm, ngram=args.ngram, batch=batch)
        * len(texts)
        / len(sample)
        for batch in (False, True)
    }

    jaccard = {pair: true_jaccard(texts[pair[0]], texts[pair[1]], args.ngram) for pair in truth}
    wanted = {pair for pair, value in jaccard.items() if value >= args.threshold}
    found_keys = {(p.a, p.b) for p in found}
    unplanted = [key for key in found_keys if key not in truth]
    correct = len(found_keys) - sum(
        1 for a, b in unplanted if true_jaccard(texts[a], texts[b], args.ngram) < args.threshold
    )
    precision = correct / len(found_keys) if found_keys else 1.0

    words = sorted(len(t.split()) for t in texts)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(
        f"{len(texts):,} texts ({words[len(words) // 2]} words median, built in {built_s:.1f} s), "
        f"{len(truth):,} planted pairs; threshold {args.threshold}, {args.num_perm} permutations, "
        f"{args.ngram}-word shingles, {bands} bands x {rows} rows"
    )
    print()
    print(f"| {'method':<50} | {'seconds':>8} | {'texts/s':>9} |")
    print(f"|{'-' * 52}|{'-' * 10}|{'-' * 11}|")
    for batch, name in ((False, "update"), (True, "update_batch")):
        peer_name = f"datasketch {name} loop ({len(sample):,} timed, scaled)"
        print(f"| {peer_name:<50} | {peer[batch]:8.1f} | {len(texts) / peer[batch]:9,.0f} |")
    print(f"| {'Shikomi find_pairs':<50} | {ours_s:8.1f} | {len(texts) / ours_s:9,.0f} |")
    print()
    print(
        f"ratio (datasketch / Shikomi): {peer[True] / ours_s:.1f}x against update_batch, "
        f"{peer[False] / ours_s:.0f}x against update"
    )
    print()
    print(f"| {'planted kind':<12} | {'pairs':>6} | {'Jaccard >= t':>12} | {'found':>6} | {'recall >= t':>11} |")
    print(f"|{'-' * 14}|{'-' * 8}|{'-' * 14}|{'-' * 8}|{'-' * 13}|")
    for kind in ("edited", "exact", "restyled", "all"):
        pairs = [pair for pair, k in truth.items() if kind in (k, "all")]
        above = [pair for pair in pairs if pair in wanted]
        hits = sum(1 for pair in above if pair in found_keys)
        recall = f"{hits / len(above):.4f}" if above else "-"
        print(f"| {kind:<12} | {len(pairs):6,} | {len(above):12,} | {hits:6,} | {recall:>11} |")
    print()
    recall_all = sum(1 for pair in truth if pair in found_keys) / len(truth)
    print(
        f"recall over planted pairs with Jaccard >= {args.threshold}: "
        f"{sum(1 for pair in wanted if pair in found_keys) / len(wanted):.4f}; over all planted pairs: {recall_all:.4f}"
    )
    print(
        f"found {len(found_keys):,} pairs, {len(unplanted):,} of them not planted; "
        f"precision {precision:.4f} (planted, or true Jaccard >= {args.threshold})"
    )


if __name__ == "__main__":
    main()
