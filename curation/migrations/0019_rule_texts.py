"""The rule-text store (curation/models/rule_texts.py): each example's texts as rules read
them, kept while its content hash is unchanged. Starts empty; rule runs fill it."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("curation", "0018_work_leases"),
    ]

    operations = [
        migrations.CreateModel(
            name="RuleText",
            fields=[
                (
                    "example",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="rule_text",
                        serialize=False,
                        to="curation.example",
                    ),
                ),
                (
                    "content_hash",
                    models.CharField(help_text="The content hash of the example they were built from.", max_length=64),
                ),
                ("user", models.TextField(help_text="The user turns, one per line, width-folded.")),
                ("assistant", models.TextField(help_text="The assistant turns, one per line, width-folded.")),
                (
                    "both",
                    models.TextField(help_text="The user and assistant turns in order, one per line, width-folded."),
                ),
                (
                    "user_written",
                    models.TextField(help_text="The user turns as written, where folding changed them.", null=True),
                ),
                (
                    "assistant_written",
                    models.TextField(
                        help_text="The assistant turns as written, where folding changed them.", null=True
                    ),
                ),
                (
                    "both_written",
                    models.TextField(help_text="Both as written, where folding changed them.", null=True),
                ),
            ],
        ),
    ]
