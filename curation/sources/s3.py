"""An S3-compatible bucket as a source: every .jsonl, .json, .csv and .parquet object under a prefix,
imported as one job (one transaction).

The endpoint is checked by the operator's outbound guard before the client connects (the AWS
default when it is empty); the access key is the value of one of the operator's secrets, in the
form ``ACCESS_KEY_ID:SECRET_ACCESS_KEY``, read when the import runs. The number of objects and
their total size are bounded by the operator's settings before anything is downloaded; each
object is downloaded to a temporary folder, read, and deleted.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _

from curation.connections.outbound import check_url
from curation.formats.rows import FileRejected, RowError
from curation.io.imports import ImportPart
from llm.outbound import OutboundRefused

JSON_FORMATS = ("openai", "alpaca", "sharegpt", "prompt_completion", "preference")
CHUNK = 1024 * 1024


def max_objects() -> int:
    return int(getattr(settings, "SHIKOMI_SOURCE_MAX_OBJECTS", 1000))


def max_bytes() -> int:
    return int(getattr(settings, "SHIKOMI_SOURCE_MAX_BYTES", settings.SHIKOMI_MAX_UPLOAD_BYTES))


def format_of(key: str, json_format: str) -> str | None:
    """The import format of an object by its name, None for a name that is not imported."""
    suffix = PurePosixPath(key).suffix.lower()
    return {".jsonl": json_format, ".json": json_format, ".csv": "csv", ".parquet": "hf"}.get(suffix)


def _refused(message: str, field: str = "source") -> FileRejected:
    return FileRejected(RowError(0, "source_failed", field, message))


def client_for(options: dict[str, Any], secret: str) -> Any:
    """A boto3 client for the bucket; FileRejected when the endpoint is refused or the secret is
    not in the form ACCESS_KEY_ID:SECRET_ACCESS_KEY."""
    import boto3
    from botocore.config import Config

    endpoint = options.get("endpoint_url") or None
    if endpoint:
        try:
            check_url(endpoint)
        except OutboundRefused as error:
            raise _refused(str(error), "endpoint_url") from None
    key_id, colon, secret_key = secret.partition(":")
    if not colon or not key_id or not secret_key:
        raise _refused(_("the secret must hold ACCESS_KEY_ID:SECRET_ACCESS_KEY"), "secret")
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=options.get("region") or None,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret_key,
        config=Config(connect_timeout=10, read_timeout=60, retries={"max_attempts": 2}),
    )


@dataclass
class Listing:
    """The objects under the prefix that are imported (key, size) and those skipped."""

    taken: list[tuple[str, int]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def listing(client: Any, options: dict[str, Any]) -> Listing:
    """The objects to import, in key order; FileRejected past the operator's bounds."""
    from botocore.exceptions import BotoCoreError, ClientError

    found = Listing()
    limit, total_limit, total = max_objects(), max_bytes(), 0
    json_format = options.get("json_format") or "openai"
    try:
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=options["bucket"], Prefix=options.get("prefix") or ""
        )
        for page in pages:
            for item in page.get("Contents", []):
                key, size = item["Key"], int(item.get("Size", 0))
                if key.endswith("/") or format_of(key, json_format) is None:
                    found.skipped.append(key)
                    continue
                found.taken.append((key, size))
                total += size
                if len(found.taken) > limit:
                    raise _refused(
                        _(
                            "more than %(limit)d objects to import under the prefix (SHIKOMI_SOURCE_MAX_OBJECTS); "
                            "choose a narrower prefix"
                        )
                        % {"limit": limit}
                    )
                if total > total_limit:
                    raise _refused(
                        _(
                            "the objects under the prefix hold more than %(limit)d bytes (SHIKOMI_SOURCE_MAX_BYTES); "
                            "choose a narrower prefix"
                        )
                        % {"limit": total_limit}
                    )
    except (BotoCoreError, ClientError) as error:
        raise _refused(_("the bucket could not be listed: %(error)s") % {"error": error}) from None
    found.taken.sort()
    return found


def _download(client: Any, bucket: str, key: str, target: Path, limit: int) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    written = 0
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
        with open(target, "wb") as out:
            while chunk := body.read(CHUNK):
                written += len(chunk)
                if written > limit:
                    raise _refused(
                        _("%(object)s: the objects hold more than %(limit)d bytes (SHIKOMI_SOURCE_MAX_BYTES)")
                        % {"object": key, "limit": limit}
                    )
                out.write(chunk)
    except (BotoCoreError, ClientError) as error:
        raise _refused(_("%(object)s could not be read: %(error)s") % {"object": key, "error": error}) from None
    return written


def s3_parts(options: dict[str, Any], secret: str, skipped: list[str]) -> Iterator[ImportPart]:
    """The objects under the prefix as parts of one import, each downloaded when its turn comes;
    the keys that are not imported are added to ``skipped``."""
    client = client_for(options, secret)
    found = listing(client, options)
    skipped.extend(found.skipped)
    json_format = options.get("json_format") or "openai"
    left = max_bytes()
    with tempfile.TemporaryDirectory(prefix="shikomi-s3-") as folder:
        for index, (key, _size) in enumerate(found.taken):
            format = format_of(key, json_format)
            assert format is not None
            target = Path(folder) / f"{index}{PurePosixPath(key).suffix.lower()}"
            left -= _download(client, options["bucket"], key, target, left)
            yield ImportPart(key, format, target, mapped=format == "csv", of=(index, len(found.taken)))
            target.unlink(missing_ok=True)
