from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from curation.models.core import Project


class Source(models.Model):
    """Where a project's data lives, defined by an admin: a SQL database, an S3-compatible
    bucket, web pages or uploaded documents. Importing from it (and again: a re-sync) goes
    through the same validated, atomic import path as a file (an `ImportJob` with `source`).

    Nothing here is a secret or reaches anything by itself: a database's address is the value
    of one of the operator's secrets, chosen by `secret` name; bucket endpoints and page URLs
    pass the outbound guard when they are fetched. `options` holds the kind's settings (the
    query and column mapping, the bucket and prefix, the URLs or sitemap, the limits)."""

    class Kind(models.TextChoices):
        SQL = "sql", _("SQL database")
        S3 = "s3", _("Object storage (S3-compatible)")
        WEB = "web", _("Web pages")
        DOCUMENTS = "documents", _("Documents (.txt, .md, .html, .pdf)")

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="sources")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    secret = models.CharField(
        max_length=200, blank=True, help_text=_("The name of the operator's secret this source reads with.")
    )
    options = models.JSONField(default=dict, blank=True)
    licence = models.CharField(max_length=200, blank=True, help_text=_("The licence of the data, for the data card."))
    description = models.TextField(blank=True, help_text=_("Where the data comes from, for the data card."))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    synced_at = models.DateTimeField(null=True, blank=True, help_text=_("When it was last imported."))

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="source_name_unique_in_project")]

    def __str__(self) -> str:
        return self.name


class SourceDocument(models.Model):
    """A document a source brought in (a fetched web page's main text, an uploaded PDF's text):
    reference material that generation templates draw passages from (`{document}`), not a
    training example. One row per distinct text in a source (`content_hash`)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="documents")
    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="documents")
    title = models.CharField(max_length=500, blank=True)
    location = models.CharField(
        max_length=2000, blank=True, help_text=_("Where it came from: the page's URL or the uploaded file's name.")
    )
    content_type = models.CharField(max_length=100, blank=True)
    text = models.TextField()
    content_hash = models.CharField(max_length=64)
    characters = models.PositiveIntegerField(default=0)
    fetched_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "content_hash"], name="document_unique_in_source"),
        ]
        indexes = [models.Index(fields=["project", "id"])]

    def __str__(self) -> str:
        return self.title or self.location
