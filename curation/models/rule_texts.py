"""The texts rules read, kept per example so that a rule run need not build them again.

A run reads each example's user text, assistant text and both, width-folded. Building them
from the messages on every run cost more than applying the rules (docs/benchmarks.md), so
curation/rules/textstore.py keeps them here: built the first time a run or a preview reads an
example, and again once its content changes (its content hash no longer equals the one they
were built from). A cache: deleting every row loses nothing but time.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from curation.models.core import Example


class RuleText(models.Model):
    """One example's texts as rules read them (curation.rules.engine.example_texts)."""

    example = models.OneToOneField(Example, on_delete=models.CASCADE, primary_key=True, related_name="rule_text")
    content_hash = models.CharField(max_length=64, help_text=_("The content hash of the example they were built from."))
    user = models.TextField(help_text=_("The user turns, one per line, width-folded."))
    assistant = models.TextField(help_text=_("The assistant turns, one per line, width-folded."))
    both = models.TextField(help_text=_("The user and assistant turns in order, one per line, width-folded."))
    user_written = models.TextField(null=True, help_text=_("The user turns as written, where folding changed them."))
    assistant_written = models.TextField(
        null=True, help_text=_("The assistant turns as written, where folding changed them.")
    )
    both_written = models.TextField(null=True, help_text=_("Both as written, where folding changed them."))

    def __str__(self) -> str:
        return f"rule texts of example {self.example_id}"
