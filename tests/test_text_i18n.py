"""The plain-Python packages translate through Django once the app is ready, and without it say
their messages in English."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.utils import translation

from llm.interface import GenerationError
from llm.local import LocalBackend
from llm.openai_compatible import OpenAICompatibleBackend
from text.i18n import gettext_lazy
from training.engine.config import BOUNDS, METHODS


def test_a_message_from_llm_is_in_japanese_when_japanese_is_active() -> None:
    with translation.override("ja"), pytest.raises(ValueError) as raised:
        LocalBackend(batch_size=0)
    assert str(raised.value) == "batch_sizeが0です。1以上を指定してください。"

    with translation.override("en"), pytest.raises(ValueError) as raised:
        LocalBackend(batch_size=0)
    assert str(raised.value) == "batch_size is 0; it must be at least 1."


def test_a_lazy_text_is_translated_when_it_is_shown() -> None:
    help_text = BOUNDS["lora_rank"].help

    with translation.override("ja"):
        assert str(help_text) == "LoRA行列のランク。アダプターの表現力を決めます（通常は8〜64）。"
        assert f"{help_text}" == str(help_text)
    with translation.override("en"):
        assert str(help_text) == "Rank of the LoRA matrices: capacity of the adapter (8-64 usual)."
        assert METHODS["lora"] == "LoRA"
        untranslated = "%(n)s runs"  # a variable, so that makemessages does not collect it
        assert gettext_lazy(untranslated) % {"n": 2} == "2 runs"


def test_worker_threads_write_their_errors_in_the_language_of_the_request() -> None:
    # Loopback is not on the (empty) allow-list: each worker thread refuses, in Japanese.
    backend = OpenAICompatibleBackend(base_url="http://127.0.0.1:9/v1", model="m", retries=1)

    with translation.override("ja"), pytest.raises(GenerationError) as raised:
        backend.generate([[{"role": "user", "content": "Hi"}]])
    assert str(raised.value).startswith("http://127.0.0.1:9/v1/chat/completions へのリクエストは送信されませんでした。")


def test_without_django_the_messages_are_english(tmp_path: Path) -> None:
    code = (
        "import json, sys\n"
        "from llm.local import LocalBackend\n"
        "from training.engine.config import METHODS\n"
        "try:\n"
        "    LocalBackend(batch_size=0)\n"
        "except ValueError as error:\n"
        "    print(json.dumps([str(error), str(METHODS['full']), 'django' in sys.modules]))\n"
    )
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == ["batch_size is 0; it must be at least 1.", "Full fine-tuning", False]
