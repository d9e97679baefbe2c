"""bench/gpu.py, the prepared GPU check: it explains itself anywhere, refuses clearly without
CUDA, and skips (with the reason) the rows whose package is missing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "gpu.py"


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # a CPU machine, even where a GPU is present
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=120)


def test_help_works_without_a_gpu():
    done = run("--help")
    assert done.returncode == 0
    assert "--record" in done.stdout and "tokens per second" in done.stdout


def test_without_cuda_it_refuses_with_status_2_and_says_why():
    done = run("--models", "1b", "--methods", "lora")
    assert done.returncode == 2
    assert "needs a CUDA GPU and this machine has none" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unknown_model_is_named():
    done = run("--models", "3b")
    assert done.returncode == 2
    assert "unknown 3b" in done.stderr


@pytest.fixture
def bench():
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import gpu

        yield gpu
    finally:
        sys.path.remove(str(ROOT / "bench"))
        sys.modules.pop("gpu", None)


def test_a_row_whose_package_is_missing_gives_the_reason(bench, monkeypatch):
    real = bench.importlib.util.find_spec
    monkeypatch.setattr(
        bench.importlib.util, "find_spec", lambda name: None if name in ("bitsandbytes", "trl") else real(name)
    )
    assert bench.skip_reason("1b", "qlora", "ours", 1) == "bitsandbytes is not installed"
    assert bench.skip_reason("1b", "lora", "trl", 1) == "trl is not installed"
    assert "FSDP" in bench.skip_reason("8b", "full", "ours", 1)
    assert bench.skip_reason("1b", "lora", "ours", 1) is None
    assert bench.cell({"skip": "trl is not installed"})[-1] == "trl is not installed"
