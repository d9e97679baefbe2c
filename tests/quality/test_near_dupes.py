from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from datasketch import MinHash, MinHashLSH
from datasketch.lsh import _optimal_param

from curation.quality import near_dupes
from curation.quality.near_dupes import (
    Pair,
    clusters,
    find_pairs,
    lsh_params,
    normalise,
    semantic_pairs,
    shingle_hashes,
    signatures,
    tokens,
)

ROOT = Path(__file__).resolve().parents[2]

ENGLISH = (
    "Thanks for reaching out about your order. The grinder you bought ships from our warehouse in Osaka, "
    "and parcels to Europe usually take between seven and ten business days to arrive. You can follow the "
    "parcel with the tracking number in your confirmation email. If it has not moved for more than five "
    "days, reply to this message with your order number and we will ask the carrier to trace it, or send "
    "a replacement at no cost to you."
)
JAPANESE = (
    "東京都の天気は晴れです。明日は雨が降るでしょう。週末は気温が下がり、北風が強くなる見込みです。"
    "外出の際は暖かい服装でお出かけください。"
)
UNRELATED = [
    "How do I reset my password? The reset email never arrives in my inbox.",
    "Write a haiku about autumn leaves falling on a quiet mountain temple.",
    "Summarise the plot of Romeo and Juliet in three sentences for a ten year old.",
    "pandasでデータフレームの先頭10行を表示するコードを書いてください。",
]


def exact_jaccard(x: str, y: str, ngram: int = 3) -> float:
    def grams(text: str) -> set[tuple[str, ...]]:
        words = tokens(text)
        if len(words) < ngram:
            return {tuple(words)} if words else set()
        return {tuple(words[i : i + ngram]) for i in range(len(words) - ngram + 1)}

    a, b = grams(x), grams(y)
    return len(a & b) / len(a | b)


def datasketch_signature(shingles: np.ndarray, *, num_perm: int, seed: int) -> np.ndarray:
    minhash = MinHash(num_perm=num_perm, seed=seed, hashfunc=lambda x: x)
    minhash.update_batch([int(value) for value in shingles])
    return minhash.hashvalues


@pytest.mark.parametrize(("num_perm", "seed"), [(128, 1), (64, 42)])
def test_signatures_equal_datasketch_minhash(num_perm: int, seed: int) -> None:
    texts = ["", "hello", "Hello there, general Kenobi!", ENGLISH, JAPANESE, "mixed 日本語 text"]
    shingle_sets = [shingle_hashes(text) for text in texts]

    got = signatures(shingle_sets, num_perm=num_perm, seed=seed)

    assert got.shape == (len(texts), num_perm)
    for row, shingles in zip(got, shingle_sets, strict=True):
        assert np.array_equal(row, datasketch_signature(shingles, num_perm=num_perm, seed=seed))


def test_an_empty_text_has_no_shingles_and_datasketchs_empty_signature() -> None:
    assert shingle_hashes(" ... ").size == 0
    assert np.array_equal(signatures([shingle_hashes("")])[0], MinHash(num_perm=128).hashvalues)


def test_a_text_shorter_than_the_ngram_is_one_shingle() -> None:
    assert shingle_hashes("hello").size == 1
    assert shingle_hashes("hello world").size == 1
    assert shingle_hashes("hello big world").size == 1
    assert shingle_hashes("hello big wide world").size == 2


def test_shingle_hashes_are_unique_sorted_and_one_per_distinct_ngram() -> None:
    hashes = shingle_hashes("the cat sat on the mat and the cat sat on the hat")
    # Eleven 3-grams, of which "the cat sat" and "cat sat on" and "sat on the" repeat.
    assert hashes.dtype == np.uint32
    assert len(hashes) == 8
    assert np.all(np.diff(hashes.astype(np.int64)) > 0)


def test_shingle_hashes_are_the_same_in_another_process() -> None:
    # Python's hash() of a string changes with PYTHONHASHSEED; stored or compared
    # signatures must not.
    texts = [ENGLISH, JAPANESE]
    script = (
        "import json, sys; from curation.quality.near_dupes import shingle_hashes; "
        f"print(json.dumps([shingle_hashes(t).tolist() for t in {texts!r}]))"
    )
    environment = {**os.environ, "PYTHONHASHSEED": "12345"}
    output = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=environment, capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(output) == [shingle_hashes(t).tolist() for t in texts]


def test_normalise_folds_width_case_punctuation_and_whitespace() -> None:
    assert normalise("  Ｈｅｌｌｏ,\tWORLD!!  ｶﾀｶﾅ。\n") == "hello world カタカナ"
    assert normalise("Don't STOP—me now…") == "dont stopme now"
    assert normalise("C++ costs $5") == "c++ costs $5"  # symbols are not punctuation


def test_tokens_count_each_cjk_character_as_a_word() -> None:
    assert tokens("東京は晴れ、OK？") == ["東", "京", "は", "晴", "れ", "ok"]
    assert tokens("한국어 text") == ["한", "국", "어", "text"]
    assert tokens("") == []


@pytest.mark.parametrize(("threshold", "num_perm"), [(0.8, 128), (0.5, 64), (0.9, 256)])
def test_lsh_params_are_datasketchs_optimum_weighted_for_recall(threshold: float, num_perm: int) -> None:
    expected = _optimal_param(threshold, num_perm, near_dupes.FALSE_POSITIVE_WEIGHT, near_dupes.FALSE_NEGATIVE_WEIGHT)
    assert lsh_params(threshold, num_perm) == expected
    assert near_dupes.FALSE_NEGATIVE_WEIGHT > near_dupes.FALSE_POSITIVE_WEIGHT


def test_it_finds_an_english_text_with_a_couple_of_words_changed() -> None:
    changed = ENGLISH.replace("grinder", "kettle").replace("carrier", "courier")
    texts = [*UNRELATED, ENGLISH, changed]

    pairs = find_pairs(texts)

    assert pairs == [Pair(4, 5, round(exact_jaccard(ENGLISH, changed), 4))]
    assert 0.8 <= pairs[0].similarity < 1.0


def test_it_finds_a_japanese_text_with_a_word_changed() -> None:
    changed = JAPANESE.replace("雨", "雪")

    pairs = find_pairs([JAPANESE, UNRELATED[0], changed])

    assert pairs == [Pair(0, 2, round(exact_jaccard(JAPANESE, changed), 4))]


def test_it_does_not_pair_unrelated_texts() -> None:
    assert find_pairs([*UNRELATED, ENGLISH, JAPANESE], threshold=0.3) == []


def test_exact_duplicates_and_case_punctuation_whitespace_changes_have_similarity_one() -> None:
    restyled = ENGLISH.upper().replace(",", "").replace(". ", ".\n\n  ")
    texts = [ENGLISH, UNRELATED[1], ENGLISH, restyled]

    pairs = find_pairs(texts)

    assert pairs == [Pair(0, 2, 1.0), Pair(0, 3, 1.0), Pair(2, 3, 1.0)]


def test_it_respects_the_threshold() -> None:
    words = [f"word{i}" for i in range(30)]
    first = " ".join(words)
    second = " ".join(words[:20] + [f"other{i}" for i in range(10)])
    similarity = exact_jaccard(first, second)
    assert 0.45 < similarity < 0.6

    assert find_pairs([first, second], threshold=0.8) == []
    assert find_pairs([first, second], threshold=0.4) == [Pair(0, 1, round(similarity, 4))]


def test_a_big_bucket_of_identical_texts_is_linked_through_one_member() -> None:
    texts = ["Thank you for contacting us, we will reply within two business days."] * 3000
    texts += [ENGLISH, UNRELATED[0]]
    started = time.perf_counter()

    pairs = find_pairs(texts)

    assert time.perf_counter() - started < 5
    # Not the 4.5 million pairs of every two copies: each copy with the first.
    assert pairs == [Pair(0, i, 1.0) for i in range(1, 3000)]
    assert clusters(len(texts), pairs) == [list(range(3000))]


def test_find_pairs_agrees_with_datasketchs_lsh_on_verified_candidates() -> None:
    rng = random.Random(3)
    vocabulary = [f"w{i}" for i in range(400)]
    texts = [" ".join(rng.choices(vocabulary, k=rng.randint(15, 60))) for _ in range(120)]
    for i in range(0, 120, 3):  # every third text gets a near copy with one word changed
        words = texts[i].split()
        words[rng.randrange(len(words))] = "changed"
        texts.append(" ".join(words))
    threshold = 0.7
    bands, rows = lsh_params(threshold, 128)
    sets = [shingle_hashes(text) for text in texts]
    lsh = MinHashLSH(num_perm=128, params=(bands, rows))
    sketches = [MinHash(hashvalues=row, scheme="affine32") for row in signatures(sets)]
    for i, sketch in enumerate(sketches):
        lsh.insert(i, sketch)
    expected = set()
    for i, sketch in enumerate(sketches):
        for j in lsh.query(sketch):
            a, b = set(sets[i].tolist()), set(sets[j].tolist())
            if i < j and len(a & b) / len(a | b) >= threshold:
                expected.add((i, j))

    found = find_pairs(texts, threshold=threshold)

    assert len(expected) >= 35
    assert {(p.a, p.b) for p in found} == expected
    assert found == sorted(found, key=lambda p: (p.a, p.b))


def test_find_pairs_reports_progress_up_to_the_total() -> None:
    calls: list[tuple[int, int]] = []

    find_pairs([ENGLISH, JAPANESE, ENGLISH], progress=lambda done, total: calls.append((done, total)))

    assert calls[-1] == (6, 6)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_find_pairs_rejects_a_threshold_outside_zero_to_one() -> None:
    with pytest.raises(ValueError, match="threshold"):
        find_pairs([ENGLISH, ENGLISH], threshold=0)


def test_clusters_merge_chains_and_leave_out_singletons() -> None:
    pairs = [Pair(5, 6, 0.9), Pair(2, 3, 0.9), Pair(0, 7, 0.85), Pair(3, 7, 0.8), Pair(8, 9, 1.0)]

    assert clusters(10, pairs) == [[0, 2, 3, 7], [5, 6], [8, 9]]
    assert clusters(4, []) == []


def test_semantic_pairs_finds_close_vectors_across_blocks() -> None:
    raw = np.array(
        [
            [1.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, 0.0, 1.0],
            [1.0, 0.05, 0.0],  # close to 0
            [0.0, 1.0, 1.0],  # 45 degrees from 1 and 2: cosine 0.7071
            [1.0, 0.0, 0.0],  # the same as 0
        ]
    )
    vectors = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    cosine_0_3 = round(float(vectors[0] @ vectors[3]), 4)

    assert semantic_pairs(vectors, threshold=0.95, block=2) == [
        Pair(0, 3, cosine_0_3),
        Pair(0, 5, 1.0),
        Pair(3, 5, cosine_0_3),
    ]
    assert semantic_pairs(vectors, threshold=0.95) == semantic_pairs(vectors, threshold=0.95, block=2)
    assert Pair(1, 4, 0.7071) in semantic_pairs(vectors, threshold=0.7, block=4)
    assert Pair(1, 4, 0.7071) not in semantic_pairs(vectors, threshold=0.95, block=4)
