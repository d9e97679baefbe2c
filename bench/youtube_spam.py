"""Weak supervision on real data: the YouTube spam comments, rules written through the API.

    .venv/bin/python bench/youtube_spam.py [--data ../shared/data/youtube_spam]

On a fresh SQLite database in a temporary folder: imports the 1,956 comments of the UCI
"YouTube Spam Collection" (the Snorkel tutorial's data) through the CSV importer, with the
true label kept only for the comments of the fifth file (Shakira: 370 comments, 320 once
exact duplicates are skipped; the "people labeled these" set, as in Snorkel's tutorial where
file 5 is the test set); files 1-4 go in unlabeled. Then, signed in as an admin, it writes
the rules through the REST API (POST /api/projects/<slug>/rules/), starts a rule run through the API, and reads back
what the app shows: Snorkel's label model next to majority vote on the human labels. It also
scores the stored weak labels against the true labels of all 1,956 comments, which the app
never saw for files 1-4.

The rules are the Snorkel spam tutorial's labeling functions that need no other library
(its TextBlob and spaCy functions are left out): keyword "my", regex "check.*out", fewer than
five words, "subscribe", links, "please"/"plz", "song". Skips cleanly when the data is absent.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "youtube_spam"

RULES = [
    {"name": "keyword my", "kind": "keywords", "params": {"keywords": ["my"]}, "label": "spam"},
    {"name": "check out", "kind": "regex", "params": {"pattern": "check.*out"}, "label": "spam"},
    {"name": "short comment", "kind": "length", "params": {"unit": "words", "max": 4}, "label": "ham"},
    {"name": "subscribe", "kind": "keywords", "params": {"keywords": ["subscribe"]}, "label": "spam"},
    {"name": "link", "kind": "regex", "params": {"pattern": r"http|www\.|\.com"}, "label": "spam"},
    {"name": "please", "kind": "keywords", "params": {"keywords": ["please", "plz"]}, "label": "spam"},
    {"name": "song", "kind": "keywords", "params": {"keywords": ["song"]}, "label": "ham"},
]


def read(data: Path) -> list[dict]:
    rows = []
    for path in sorted(data.glob("Youtube0*.csv")):
        with open(path, encoding="utf-8", newline="") as f:
            for record in csv.DictReader(f):
                rows.append(
                    {
                        "text": record["CONTENT"],
                        "truth": "spam" if record["CLASS"].strip() == "1" else "ham",
                        "video": path.stem,
                        "labeled": path.name.startswith("Youtube05"),
                    }
                )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    if not (args.data / "Youtube01-Psy.csv").exists():
        print(f"skipped: {args.data} has no YouTube spam CSV files")
        return

    workdir = Path(tempfile.mkdtemp(prefix="shikomi-spam-"))
    os.environ.update(SHIKOMI_DATA_DIR=str(workdir), SECRET_KEY="bench", DJANGO_SETTINGS_MODULE="config.settings")
    os.environ.pop("DATABASE_URL", None)
    sys.path.insert(0, str(ROOT))
    import warnings

    import django

    warnings.filterwarnings("ignore", message="Input has data type int64", category=FutureWarning)
    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test import Client
    from django_huey import get_queue

    from curation.io.imports import example_import, import_job_create
    from curation.models import Example, Label, Membership, Project, Role, WeakLabel

    for queue in settings.QUEUES:
        get_queue(queue).immediate = True  # the run executes inside the API request: one process
    settings.ALLOWED_HOSTS = ["*"]
    call_command("migrate", verbosity=0)

    rows = read(args.data)
    project = Project.objects.create(name="YouTube spam", slug="youtube-spam", kind=Project.Kind.CLASSIFICATION)
    Label.objects.create(project=project, name="spam", description="Promotion, links, asks to subscribe or visit")
    Label.objects.create(project=project, name="ham", description="A comment about the video")
    admin = User.objects.create_user("spam-admin", password="bench-password")
    Membership.objects.create(project=project, user=admin, role=Role.ADMIN)

    # Import through the CSV importer, as a user would upload it.
    upload = workdir / "comments.csv"
    with open(upload, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label", "video"])
        for row in rows:
            writer.writerow([row["text"], row["truth"] if row["labeled"] else "", row["video"]])
    with open(upload, "rb") as f:
        job = import_job_create(project=project, user=admin, fileobj=f, filename=upload.name, format="csv")
    job = example_import(job=job)
    assert job.status == job.Status.SUCCEEDED, job.error or job.report

    client = Client()
    assert client.login(username="spam-admin", password="bench-password")
    api = f"/api/projects/{project.slug}"
    for rule in RULES:
        response = client.post(f"{api}/rules/", {**rule, "target": "user"}, content_type="application/json")
        assert response.status_code == 201, response.content
    response = client.post(f"{api}/rule-runs/", {}, content_type="application/json")
    assert response.status_code == 202, response.content
    run = client.get(f"{api}/rule-runs/{response.json()['id']}/").json()
    assert run["status"] == "done", run

    metrics = run["metrics"]
    print(
        f"{Example.objects.filter(project=project).count():,} comments imported "
        f"({job.rows_duplicate} exact duplicates skipped), "
        f"{Example.objects.filter(project=project, label__isnull=False).count()} labeled by 'people' (file 5); "
        f"{len(RULES)} rules; rule coverage {metrics['coverage']:.1%}"
    )
    print()
    print("| rule | polarity | coverage | overlaps | conflicts | accuracy on human labels |")
    print("|---|---|---|---|---|---|")
    for row in run["analysis"]:
        accuracy = "-" if row["accuracy"] is None else f"{row['accuracy']:.3f} ({row['correct']}/{row['gold_hits']})"
        print(
            f"| {row['name']} | {','.join(row['polarity'])} | {row['coverage']:.3f} | {row['overlaps']:.3f} "
            f"| {row['conflicts']:.3f} | {accuracy} |"
        )

    # Against the true labels of every comment, files 1-4 included (the app never saw those).
    truth = {}
    for example in Example.objects.filter(project=project).only("id", "messages"):
        truth[example.pk] = example.messages[0]["content"]
    by_text = {row["text"].strip(): row["truth"] for row in rows}
    weak = list(WeakLabel.objects.filter(run_id=run["id"]).select_related("label"))
    print()
    n_gold = metrics["majority"]["n_gold"]
    print(f"On the {n_gold} human labels: accuracy where the model decides, coverage, macro-F1, accuracy counting")
    print("an undecided comment as wrong; then on all comments, against true labels the app never saw for files 1-4.")
    print()
    print("| model | accuracy (decided) | coverage | macro-F1 | accuracy (all) | all comments: accuracy (decided) |")
    print("|---|---|---|---|---|---|")
    for name in ("label_model", "majority"):
        score = metrics[name]
        if score is None:
            continue
        decided = []
        for w in weak:
            if name == "label_model":
                chosen = w.label.name if w.label_id else None
            else:
                counts = Counter(w.votes.values()).most_common()
                tie = len(counts) > 1 and counts[0][1] == counts[1][1]
                chosen = counts[0][0] if counts and not tie else None
            if chosen is not None:
                decided.append((chosen, by_text.get(truth[w.example_id].strip())))
        overall = f"{sum(a == b for a, b in decided) / len(decided):.3f} (n={len(decided)})"
        print(
            f"| {name.replace('_', ' ')} | {score['accuracy']:.3f} | {score['coverage']:.3f} "
            f"| {score['macro_f1']:.3f} | {score['accuracy_all']:.3f} | {overall} |"
        )
    print()
    print(json.dumps({"class_balance": metrics["class_balance"], "model": metrics["model"]}))


if __name__ == "__main__":
    main()
