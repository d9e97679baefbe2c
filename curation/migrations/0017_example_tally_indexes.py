"""Indexes only, for the project dashboard at 100,000 examples (docs/benchmarks.md).

``example_tally`` covers the dashboard's grouped count (status, source, split, label and
whether the label came from the rules), so the count reads the index and never the rows with
their messages. ``example_open_answered`` holds only unresolved examples, by their number of
answers: the disagreement count reads it alone. ``example_recent`` serves the examples list
sorted by "recently changed", a page at a time by key. All work the same on SQLite and
PostgreSQL.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("curation", "0016_workspace_settings_and_dismissals"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="example",
            index=models.Index(
                fields=["project", "status", "source", "split", "label", "weak_label"], name="example_tally"
            ),
        ),
        migrations.AddIndex(
            model_name="example",
            index=models.Index(
                fields=["project", "annotation_count", "id"],
                condition=models.Q(resolved_at__isnull=True),
                name="example_open_answered",
            ),
        ),
        migrations.AddIndex(
            model_name="example",
            index=models.Index(fields=["project", "-updated_at", "id"], name="example_recent"),
        ),
    ]
