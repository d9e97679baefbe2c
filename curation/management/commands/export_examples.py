"""Export a project's examples to a file or to standard output, streamed."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from curation import formats
from curation.core.services import InvalidExample
from curation.io.exports import example_export, skipped_text
from curation.models import Project


class Command(BaseCommand):
    help = "Export a project's examples (openai, alpaca, sharegpt, csv, parquet, ...)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", help="The project's slug.")
        parser.add_argument("--format", required=True, choices=list(formats.EXPORT_FORMATS))
        parser.add_argument("--split", help="train, validation, test or unassigned")
        parser.add_argument(
            "--status",
            help="One or more of draft, needs_review, approved, rejected (comma-separated), or any. Default: approved.",
        )
        parser.add_argument("--source", help="imported, human, rule, synthetic or augmented")
        parser.add_argument("--label", help="A label name.")
        parser.add_argument(
            "--raw-formulas",
            action="store_true",
            help="CSV and TSV: write cells that start with = + - @ as stored, without the ' that keeps "
            "a spreadsheet from running them (for programs that read the file).",
        )
        parser.add_argument(
            "--shikomi-fields",
            action="store_true",
            help="Add each example's id, label, split, status and metadata to its record, so that importing "
            "the file gives back the same examples, and where each label came from (label_source).",
        )
        parser.add_argument(
            "--per-split",
            action="store_true",
            help="One file per split (those that have examples) in a ZIP archive; write it with -o.",
        )
        parser.add_argument(
            "--card",
            action="store_true",
            help="Add a data card (README.md, the Hugging Face dataset card format) in a ZIP archive with the "
            "data; write it with -o.",
        )
        parser.add_argument("-o", "--output", help="File to write; standard output when left out.")

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"No project with the slug {options['project']!r}.")
        try:
            export = example_export(
                project=project,
                format=options["format"],
                split=options["split"],
                status=options["status"],
                source=options["source"],
                label=options["label"],
                formulas="raw" if options["raw_formulas"] else "escaped",
                shikomi_fields=options["shikomi_fields"],
                per_split=options["per_split"],
                card=options["card"],
            )
        except InvalidExample as exc:
            raise CommandError(f"{exc.field}: {exc.message}") from exc
        if export.skipped:
            self.stderr.write(
                f"Left out {export.skipped_total} example(s) that {options['format']} cannot hold: "
                f"{skipped_text(export.skipped)}"
            )
        chunks = export.chunks
        if options["output"]:
            with open(options["output"], "wb") as f:
                for chunk in chunks:
                    f.write(chunk)
            return
        binary = getattr(self.stdout._out, "buffer", None)
        if binary is not None:
            for chunk in chunks:
                binary.write(chunk)
            binary.flush()
        elif options["format"] == "parquet" or options["per_split"] or options["card"]:
            raise CommandError("The file is binary (Parquet or ZIP): write it to a file with -o.")
        else:
            # A text stream (as in tests, or a redirected sys.stdout): write decoded text.
            for chunk in chunks:
                self.stdout.write(chunk.decode("utf-8"), ending="")
