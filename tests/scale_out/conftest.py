"""The scale-out test's S3-compatible server and bucket (tests/s3.py)."""

from tests.s3 import s3_artifacts, s3_server  # noqa: F401
