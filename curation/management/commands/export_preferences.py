"""Export a project's preference pairs as JSON Lines for TRL's DPOTrainer, to a file or to
standard output.

A file is written next to its destination under a temporary name and renamed into place at
the end, so a failure half-way never leaves a half-written file (nor spoils one already there).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from curation.io.exports import skipped_text
from curation.models import Project
from curation.review import services as review


class Command(BaseCommand):
    help = "Export a project's preference pairs (from draft edits and rankings) as JSON Lines for DPO."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", help="The project's slug.")
        parser.add_argument(
            "--format",
            default="conversational",
            help="conversational (prompt as messages; the default) or standard (plain strings).",
        )
        parser.add_argument("-o", "--output", help="File to write; standard output when left out.")

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(_("No project with the slug %(slug)r.") % {"slug": options["project"]})
        chosen = options["format"]
        if chosen not in review.PAIR_FORMATS:
            raise CommandError(
                _("Unknown format %(format)r; choose one of %(formats)s.")
                % {"format": chosen, "formats": ", ".join(review.PAIR_FORMATS)}
            )
        skipped = review.preferences_skipped(project, format=chosen)
        if skipped:
            self.stderr.write(
                _("Left out %(count)d pair(s) that the %(format)s format cannot hold: %(reasons)s")
                % {"count": sum(skipped.values()), "format": chosen, "reasons": skipped_text(skipped)}
            )
        lines = review.preferences_jsonl(project, format=chosen)
        if options["output"]:
            target = Path(options["output"])
            written = _write_atomically(target, lines)
            where = str(target)
        else:
            written = 0
            for line in lines:
                self.stdout.write(line, ending="")
                written += 1
            self.stdout.flush()
            where = _("standard output")
        self.stderr.write(
            ngettext(
                "Wrote %(count)d preference pair to %(where)s.",
                "Wrote %(count)d preference pairs to %(where)s.",
                written,
            )
            % {"count": written, "where": where}
        )


def _write_atomically(target: Path, lines: Any) -> int:
    """Write the lines to a temporary file beside `target`, then rename it over `target`."""
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise CommandError(_("%(folder)s: no such folder.") % {"folder": folder})
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=folder)
    written = 0
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as f:
            for line in lines:
                f.write(line)
                written += 1
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600); give it the mode a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return written
