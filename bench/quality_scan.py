"""The whole quality check on a real database: N examples, every stage, stored.

    .venv/bin/python bench/quality_scan.py [--rows 100000]

Builds a throw-away SQLite database in a temporary folder, a chat project with N examples
(the texts of bench/dedupe.py, 5% planted near duplicates, an answer each, a few with
personal data, splits 80/10/10), then runs `quality_scan_execute` as the Huey task would and
prints the time of each stage, the rows written, and the peak memory of the process.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["SHIKOMI_DATA_DIR"] = tempfile.mkdtemp(prefix="shikomi-bench-")
os.environ.pop("DATABASE_URL", None)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

ANSWERS = [
    "Thank you for writing. I have passed this on to the team, who will reply within a day.",
    "Here is a shorter version of the passage, in plain words, keeping its meaning.",
    "この文章の要点は三つあります。順番に説明します。",
]
PII = [" Write to me at hanako.sato@example.jp.", " My phone is 090-1234-5678.", " Card 4111 1111 1111 1111."]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from bench.dedupe import DEFAULT_DATA, corpus
    from curation.core.services import content_hash, search_text
    from curation.models import DuplicateCluster, DuplicatePair, Example, ExampleCheck, Project, QualityScan
    from curation.quality.scanning import quality_scan_execute

    started = time.perf_counter()
    texts, planted = corpus(args.rows, DEFAULT_DATA)
    rng = random.Random(3)
    project = Project.objects.create(name="Bench", slug="bench")
    rows = []
    for text in texts:
        user = text + (rng.choice(PII) if rng.random() < 0.02 else "")
        messages = [{"role": "user", "content": user}, {"role": "assistant", "content": rng.choice(ANSWERS)}]
        split = rng.choices(["train", "validation", "test"], weights=[8, 1, 1])[0]
        rows.append(
            Example(
                project=project,
                messages=messages,
                split=split,
                content_hash=content_hash(messages),
                search_text=search_text(messages),
            )
        )
    Example.objects.bulk_create(rows, batch_size=2000)
    built = time.perf_counter() - started
    scan = QualityScan.objects.create(
        project=project,
        number=1,
        config={
            "dedupe_threshold": 0.8,
            "semantic_dedupe": False,
            "semantic_threshold": 0.95,
            "base_model": "",
            "max_seq_length": 512,
            "kind": "chat",
            "structured_format": "json",
        },
        total=len(rows),
    )
    started = time.perf_counter()
    scan = quality_scan_execute(scan=scan)
    total = time.perf_counter() - started
    assert scan.status == QualityScan.Status.DONE, scan.error
    seconds = scan.summary["seconds"]
    print(f"{len(rows):,} examples ({len(planted):,} planted near duplicates), built in {built:.1f} s\n")
    print("| stage             | seconds |")
    print("|-------------------|---------|")
    for name, value in seconds.items():
        print(f"| {name:<17} | {value:7.1f} |")
    rest = total - sum(seconds.values())
    print(f"| read + store      | {rest:7.1f} |")
    print(f"| whole check       | {total:7.1f} |")
    print()
    print(
        f"stored: {DuplicateCluster.objects.count():,} clusters, {DuplicatePair.objects.count():,} pairs, "
        f"{ExampleCheck.objects.count():,} example checks; personal data {scan.summary['pii']}; "
        f"over {scan.config['max_seq_length']} tokens: {scan.summary['lengths']['over_limit']:,}"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of the process: {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
