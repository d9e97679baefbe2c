"""A real S3-compatible server for the tests: moto's standalone server (`moto_server`, from
moto[server]) started once per session on a free loopback port, or the server at
$SHIKOMI_TEST_S3_URL when that is set (.ci/run starts one for the PostgreSQL + Redis pass).
Tests import the fixtures explicitly:

    from tests.s3 import s3_artifacts, s3_server  # noqa: F401

`s3_artifacts` gives each test its own bucket as the "artifacts" storage, and its own working
folders (ARTIFACT_DIR, UPLOAD_DIR), as a worker machine has; `s3_artifacts.env()` is the
environment that gives a consumer process (tests/conftest.py `Consumers(env=...)`) the same bucket.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ACCESS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}
PREFIX = "artifacts"  # the storage's folder in the bucket, as SHIKOMI_S3_PREFIX's default


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """The S3 endpoint's address."""
    if url := os.getenv("SHIKOMI_TEST_S3_URL"):
        yield url.rstrip("/")
        return
    port = _free_port()
    binary = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")
    assert binary, "moto_server is missing: install moto[server] (requirements.txt)"
    process = subprocess.Popen(
        [binary, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while not _listening(port):
            assert process.poll() is None, "moto_server exited at start"
            assert time.monotonic() < deadline, "moto_server did not listen within 30 s"
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Bucket:
    """The test's bucket, seen from outside the app (boto3)."""

    client: Any
    name: str
    endpoint: str

    def env(self) -> dict[str, str]:
        """The environment that makes a process of the app (a consumer started by a test) use
        this bucket as its artifacts storage, as an operator configures it (config/settings.py)."""
        return {
            "SHIKOMI_S3_BUCKET": self.name,
            "SHIKOMI_S3_PREFIX": PREFIX,
            "AWS_S3_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": ACCESS["aws_secret_access_key"],
            "AWS_DEFAULT_REGION": ACCESS["region_name"],
        }

    def names(self, under: str = "") -> list[str]:
        """The storage names (without the storage's folder) of the objects under `under`."""
        prefix = f"{PREFIX}/{under}"
        found = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix):
            found += [item["Key"][len(PREFIX) + 1 :] for item in page.get("Contents", [])]
        return sorted(found)

    def delete(self, under: str) -> None:
        for name in self.names(under):
            self.client.delete_object(Bucket=self.name, Key=f"{PREFIX}/{name}")


@pytest.fixture
def s3_artifacts(s3_server, settings, tmp_path) -> Iterator[Bucket]:
    """A new bucket as the artifacts storage, and this test's own working folders."""
    import boto3

    client = boto3.client("s3", endpoint_url=s3_server, **ACCESS)
    bucket = Bucket(client, f"shikomi-test-{uuid.uuid4().hex[:16]}", s3_server)
    client.create_bucket(Bucket=bucket.name)
    settings.ARTIFACT_DIR = tmp_path / "artifacts"
    settings.UPLOAD_DIR = tmp_path / "uploads"
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket.name,
                "location": PREFIX,
                "endpoint_url": s3_server,
                "access_key": ACCESS["aws_access_key_id"],
                "secret_key": ACCESS["aws_secret_access_key"],
                "region_name": ACCESS["region_name"],
                "file_overwrite": True,
                "default_acl": None,
            },
        },
    }
    yield bucket
    bucket.delete("")
    client.delete_bucket(Bucket=bucket.name)
