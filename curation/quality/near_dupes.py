"""Near-duplicate examples: MinHash LSH over word shingles, vectorised with numpy.

Two examples are near duplicates when the Jaccard similarity of their sets of word
n-grams (shingles, three words by default) reaches a threshold. Comparing every pair is
quadratic, so we estimate Jaccard with MinHash signatures and only compare the pairs that
locality-sensitive hashing (LSH) puts in the same bucket; every such candidate is then
checked with the exact Jaccard of its two shingle sets, so a reported pair always meets
the threshold and LSH can only cost recall, never precision.

Why not datasketch's ``MinHash`` and ``MinHashLSH`` directly: they work one document at
a time in Python, about 2,500 documents a second with ``update_batch`` on a two-core
machine (40 s for 100,000 examples) and under 900 with ``update`` per shingle. The work
per document is small; the Python loop around it is the cost. Here every stage runs over
a chunk of documents at once: punctuation, tokens and token hashes come from one array of
code points, shingles are one flat ``uint32`` array with offsets, each permutation is one
multiply-add over that array and ``np.minimum.reduceat`` takes the per-document minimum;
bands are hashed and sorted as columns (about 4.5 s for 100,000 examples).

The signatures are bit-for-bit datasketch's (``MinHash(num_perm, seed, hashfunc=lambda
x: x)`` fed the same integers: its default "affine32" scheme, the MurmurHash3 finalizer
and then ``a * h + b mod 2**32``, with datasketch's own permutation parameters), and the
bands and rows come from datasketch's LSH optimiser, so our results can be checked
against the reference implementation and sketches stay interchangeable with it. Recall
matters more than precision here (verification removes false candidates, while a missed
duplicate stays in the training set), so the optimiser weighs false negatives 19 times
more than false positives: at threshold 0.8 with 128 permutations that is 16 bands of 8
rows, which finds a pair at Jaccard 0.8 with probability 0.95 and at 0.85 with 0.99.

Text is compared after :func:`normalise` (NFKC, case folding, no punctuation, single
spaces). Japanese and Chinese have no spaces between words, so each kana, kanji or
hangul character is a token of its own. A token's hash is computed from its code points
alone (a polynomial, then the MurmurHash3 finalizer), so shingle hashes are the same in
every process and on every run, unlike Python's salted ``hash()``.
"""

from __future__ import annotations

import functools
import sys
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from text.cjk import CJK_RANGES

# Recall over precision: candidates are verified exactly, so extra candidates cost only a
# little time, while a missed pair is a duplicate left in the data.
FALSE_POSITIVE_WEIGHT = 0.05
FALSE_NEGATIVE_WEIGHT = 0.95

# A band bucket larger than this is linked through its first member (k - 1 candidate
# pairs) instead of all k * (k - 1) / 2 pairs: 5,000 copies of one boilerplate answer
# would otherwise make 12.5 million pairs. The copies still form one cluster.
MAX_BUCKET = 50

_U32 = np.uint32
_U64 = np.uint64
_MIX_SEED = _U64(0x9E3779B97F4A7C15)
_MIX_PRIME = _U64(0x100000001B3)
# Documents per chunk when shingling and signing: bounds the temporary arrays (a chunk
# of 2,000 chat examples is about 200,000 shingles) without many small numpy calls.
_CHUNK_DOCS = 2_000
# Candidate pairs verified per batch, bounding the gathered shingle arrays.
_VERIFY_BATCH = 20_000


@dataclass(frozen=True)
class Pair:
    a: int  # index into the input list, a < b
    b: int
    similarity: float  # exact Jaccard of the shingle sets (cosine for semantic_pairs), 4 places


@functools.cache
def _is_punctuation() -> np.ndarray:
    """One flag per code point: is it punctuation (Unicode category P*)?"""
    flags = np.zeros(sys.maxunicode + 1, dtype=bool)
    flags[[cp for cp in range(sys.maxunicode + 1) if unicodedata.category(chr(cp)).startswith("P")]] = True
    return flags


def normalise(text: str) -> str:
    """NFKC (full-width ＡＢＣ and half-width ｶﾀｶﾅ become ABC and カタカナ), case folded,
    punctuation removed, runs of whitespace made one space."""
    return _normalise_many([text])[0]


def _normalise_many(texts: Sequence[str]) -> list[str]:
    if not texts:
        return []
    # Removing punctuation is a table lookup per code point over all texts at once:
    # str.translate looks each character up in a dict, several times slower on the
    # non-ASCII text (curly quotes, emoji, Japanese) that most real examples contain.
    # NUL separates the texts, so a NUL inside a text becomes a space first.
    folded = "\x00".join(unicodedata.normalize("NFKC", t).casefold().replace("\x00", " ") for t in texts)
    codes = np.frombuffer(folded.encode("utf-32-le", "surrogatepass"), dtype=_U32)
    kept = codes[~_is_punctuation()[codes]].tobytes().decode("utf-32-le", "surrogatepass")
    return [" ".join(part.split()) for part in kept.split("\x00")]


def tokens(text: str) -> list[str]:
    """The words of ``normalise(text)``; each CJK character is a word of its own."""
    normalised = normalise(text)
    starts, ends = _token_spans(_code_points(normalised))
    return [normalised[start:end] for start, end in zip(starts.tolist(), ends.tolist(), strict=True)]


def shingle_hashes(text: str, *, ngram: int = 3) -> np.ndarray:
    """Sorted unique ``uint32`` hashes of the token n-grams of ``normalise(text)``.

    A text with fewer than ``ngram`` tokens is one shingle of all its tokens; an empty
    text has none.
    """
    flat, _ = _shingle_sets([normalise(text)], ngram=ngram)
    return flat


def _code_points(text: str) -> np.ndarray:
    # A Python string indexes code points, and so does this array: offsets carry over.
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=_U32)


@functools.cache
def _is_cjk() -> np.ndarray:
    flags = np.zeros(sys.maxunicode + 1, dtype=bool)
    for low, high in CJK_RANGES:
        flags[low : high + 1] = True
    return flags


def _token_spans(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end offsets of the tokens of normalised text (several texts joined by
    newlines): the runs between spaces, with each CJK character a token of its own."""
    word = (codes != ord(" ")) & (codes != ord("\n"))
    cjk = _is_cjk()[codes]
    previous_word = np.concatenate(([False], word[:-1]))
    previous_cjk = np.concatenate(([False], cjk[:-1]))
    start = word & (~previous_word | cjk | previous_cjk)
    next_word = np.concatenate((word[1:], [False]))
    next_start = np.concatenate((start[1:], [False]))
    return np.flatnonzero(start), np.flatnonzero(word & (~next_word | next_start)) + 1


def _shingle_sets(normalised: Sequence[str], *, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """Unique shingle hashes of each text, sorted within each text, as one flat array and
    ``len(normalised) + 1`` offsets."""
    n = len(normalised)
    codes = _code_points("\n".join(normalised))
    starts, ends = _token_spans(codes)
    lengths = ends - starts
    counts = np.bincount(np.cumsum(codes == ord("\n"))[starts], minlength=n)

    # Token hashes straight from the code points, all tokens at once: a polynomial in a
    # large odd number over each token's characters (uint64 arithmetic wraps), then the
    # MurmurHash3 finalizer. Unlike hash(), the same in every process and on every run.
    hashes = np.empty(len(starts), dtype=_U64)
    if len(starts):
        chars = codes[(codes != ord(" ")) & (codes != ord("\n"))].astype(_U64)
        first = np.cumsum(lengths) - lengths
        position = np.arange(len(chars)) - np.repeat(first, lengths)
        powers = np.cumprod(np.concatenate(([_U64(1)], np.full(lengths.max() - 1, _MIX_PRIME, dtype=_U64))))
        hashes = _fmix64(np.add.reduceat(chars * powers[position], first) ^ lengths.astype(_U64))

    # One shingle per n-gram start; a short, non-empty text gets one shingle of all its
    # tokens (width below ngram), so a two-word answer still has something to compare.
    token_start = np.cumsum(counts) - counts
    per_doc = np.where(counts >= ngram, counts - ngram + 1, np.minimum(counts, 1))
    doc = np.repeat(np.arange(n), per_doc)
    first = np.repeat(token_start - (np.cumsum(per_doc) - per_doc), per_doc) + np.arange(len(doc))
    width = np.minimum(counts, ngram)[doc]
    mixed = np.full(len(doc), _MIX_SEED, dtype=_U64)
    last = max(len(hashes) - 1, 0)
    for j in range(ngram):
        step = (mixed ^ hashes[np.minimum(first + j, last)]) * _MIX_PRIME
        mixed = np.where(j < width, step, mixed)
    shingles = (_fmix64(mixed) >> _U64(32)).astype(_U32)

    # Unique per document: sort (document, hash) keys and keep the first of each run.
    keys = np.sort((doc.astype(_U64) << _U64(32)) | shingles)
    keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))] if len(keys) else keys
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount((keys >> _U64(32)).astype(np.int64), minlength=n), out=offsets[1:])
    return keys.astype(_U32), offsets


def _fmix64(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> _U64(33))
    h = h * _U64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> _U64(33))
    h = h * _U64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> _U64(33))


def _fmix32(h: np.ndarray) -> np.ndarray:
    # datasketch's affine32 pre-mix (MurmurHash3's finalizer), applied once per value.
    h = h ^ (h >> _U32(16))
    h = h * _U32(0x85EBCA6B)
    h = h ^ (h >> _U32(13))
    h = h * _U32(0xC2B2AE35)
    return h ^ (h >> _U32(16))


@functools.cache
def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    # Taken from datasketch itself rather than re-deriving its RandomState calls, so the
    # signatures stay equal to its MinHash if it ever changes how it draws them.
    from datasketch import MinHash

    minhash = MinHash(num_perm=num_perm, seed=seed)
    if minhash.scheme != "affine32":
        raise RuntimeError(f"datasketch's default MinHash scheme is {minhash.scheme!r}; this code assumes affine32")
    a, b = minhash.permutations
    return a.astype(_U32), b.astype(_U32)


def signatures(shingle_sets: Sequence[np.ndarray], *, num_perm: int = 128, seed: int = 1) -> np.ndarray:
    """MinHash signatures, one ``uint32`` row per set, equal to datasketch's
    ``MinHash(num_perm=num_perm, seed=seed, hashfunc=lambda x: x)`` after ``update_batch``
    with the same integers, which must fit in 32 bits (an empty set keeps datasketch's
    empty value, 2**32 - 1)."""
    counts = np.array([len(s) for s in shingle_sets], dtype=np.int64)
    offsets = np.zeros(len(shingle_sets) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    flat = np.concatenate([np.asarray(s, dtype=_U32) for s in shingle_sets]) if shingle_sets else np.empty(0, _U32)
    return _signatures(flat, offsets, num_perm=num_perm, seed=seed)


def _signatures(flat: np.ndarray, offsets: np.ndarray, *, num_perm: int, seed: int) -> np.ndarray:
    a, b = _permutations(num_perm, seed)
    n = len(offsets) - 1
    result = np.full((n, num_perm), np.iinfo(_U32).max, dtype=_U32)
    mixed = _fmix32(flat.astype(_U32))
    for lo in range(0, n, _CHUNK_DOCS):
        hi = min(lo + _CHUNK_DOCS, n)
        starts = offsets[lo:hi] - offsets[lo]
        filled = offsets[lo + 1 : hi + 1] > offsets[lo:hi]
        if not filled.any():
            continue
        values = mixed[offsets[lo] : offsets[hi]]
        buffer = np.empty_like(values)
        rows = np.flatnonzero(filled) + lo
        # One permutation at a time keeps the temporary at one value per shingle;
        # uint32 arithmetic wraps, which is datasketch's "mod 2**32".
        for k in range(num_perm):
            np.multiply(values, a[k], out=buffer)
            np.add(buffer, b[k], out=buffer)
            result[rows, k] = np.minimum.reduceat(buffer, starts[filled])
    return result


@functools.cache
def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) from datasketch's optimiser, weighing false negatives over false
    positives (see FALSE_NEGATIVE_WEIGHT)."""
    from datasketch.lsh import _optimal_param

    bands, rows = _optimal_param(threshold, num_perm, FALSE_POSITIVE_WEIGHT, FALSE_NEGATIVE_WEIGHT)
    return int(bands), int(rows)


def find_pairs(
    texts: Sequence[str],
    *,
    threshold: float = 0.8,
    num_perm: int = 128,
    ngram: int = 3,
    seed: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> list[Pair]:
    """Pairs of texts whose shingle sets have exact Jaccard similarity >= threshold,
    sorted by (a, b). Texts that normalise to the same string have similarity 1.0 (texts
    with nothing left after normalising, such as "" and "!!!", are the same text).

    ``progress`` gets (done, total) as the work goes on; total is two steps per text
    (shingling and signing it, then bucketing and verifying).
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    if ngram < 1:
        raise ValueError(f"ngram must be at least 1, got {ngram}")
    n = len(texts)
    total = 2 * n
    if n < 2:
        return []

    def report(done: int) -> None:
        if progress is not None:
            progress(done, total)

    # The whole signature, so that it equals datasketch's (its permutation parameters
    # depend on num_perm); like its LSH, the bands read the first bands * rows columns.
    # Signing chunk by chunk keeps the temporaries to one chunk's shingles.
    signed = np.empty((n, num_perm), dtype=_U32)
    flats, offsets = [], [np.zeros(1, dtype=np.int64)]
    for lo in range(0, n, _CHUNK_DOCS):
        flat, chunk_offsets = _shingle_sets(_normalise_many(texts[lo : lo + _CHUNK_DOCS]), ngram=ngram)
        signed[lo : lo + _CHUNK_DOCS] = _signatures(flat, chunk_offsets, num_perm=num_perm, seed=seed)
        flats.append(flat)
        offsets.append(chunk_offsets[1:] + offsets[-1][-1])
        report(min(lo + _CHUNK_DOCS, n))
    flat, offsets_all = np.concatenate(flats), np.concatenate(offsets)
    del flats

    bands, rows = lsh_params(threshold, num_perm)
    codes = []
    for band in range(bands):
        codes.append(_band_candidates(signed[:, band * rows : (band + 1) * rows], n))
        report(n + n * (band + 1) // (bands + 1))
    candidates = np.unique(np.concatenate(codes))
    left, right = candidates // n, candidates % n

    pairs = []
    for lo in range(0, len(candidates), _VERIFY_BATCH):
        a, b = left[lo : lo + _VERIFY_BATCH], right[lo : lo + _VERIFY_BATCH]
        similarity = _jaccard(flat, offsets_all, a, b)
        keep = similarity >= threshold
        pairs.extend(
            Pair(int(i), int(j), round(float(s), 4)) for i, j, s in zip(a[keep], b[keep], similarity[keep], strict=True)
        )
    report(total)
    return pairs


def _band_candidates(band: np.ndarray, n: int) -> np.ndarray:
    """Candidate pairs, coded ``a * n + b`` with a < b, of the rows sharing this band."""
    key = _band_keys(band)
    order = np.argsort(key, kind="stable")  # stable: members of a bucket stay in index order
    key = key[order]
    boundary = np.flatnonzero(np.diff(key)) + 1
    group_start = np.concatenate(([0], boundary))
    group_size = np.diff(np.concatenate((group_start, [len(key)])))
    size = np.repeat(group_size, group_size)
    start = np.repeat(group_start, group_size)
    position = np.arange(len(key))

    found = []
    small = (size >= 2) & (size <= MAX_BUCKET)
    largest_small = int(size[small].max()) if small.any() else 0
    # Every pair in a small bucket: member i with member i + d, for each distance d.
    for d in range(1, largest_small):
        i = position[small & (position + d < start + size)]
        found.append(order[i] * n + order[i + d])
    # A large bucket: each member with the bucket's first (lowest-index) member.
    large = (size > MAX_BUCKET) & (position > start)
    found.append(order[start[large]] * n + order[large])
    return np.concatenate(found).astype(np.int64)


def _jaccard(flat: np.ndarray, offsets: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact Jaccard of the shingle sets of documents a[i] and b[i], for every i."""
    size_a = offsets[a + 1] - offsets[a]
    size_b = offsets[b + 1] - offsets[b]
    # Gather both sets of every pair, tagged by pair, sort, and count the values that
    # appear twice within one pair: that is the intersection (each set is unique). Each
    # set is already sorted, so the keys are two sorted runs per pair, which the stable
    # sort (a merge sort) merges in a fraction of the time a quicksort takes.
    lengths = np.stack((size_a, size_b), axis=1).ravel()
    starts = np.stack((offsets[a], offsets[b]), axis=1).ravel()
    within = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    values = flat[np.repeat(starts, lengths) + within].astype(_U64)
    pair = np.repeat(np.arange(len(a), dtype=_U64), size_a + size_b)
    keys = np.sort((pair << _U64(32)) | values, kind="stable")
    repeated = keys[1:] == keys[:-1]
    common = np.bincount((keys[1:][repeated] >> _U64(32)).astype(np.int64), minlength=len(a))
    union = size_a + size_b - common
    # Two empty texts (nothing left after normalising) are the same text.
    return np.where(union > 0, common / np.maximum(union, 1), 1.0)


def clusters(n: int, pairs: Iterable[Pair]) -> list[list[int]]:
    """Connected components of the pairs with at least two members, each sorted, in order
    of their first member."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for pair in pairs:
        ra, rb = root(pair.a), root(pair.b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[int, list[int]] = {}
    for i in range(n):
        members.setdefault(root(i), []).append(i)
    return sorted((group for group in members.values() if len(group) > 1), key=lambda group: group[0])


def semantic_pairs(vectors: np.ndarray, *, threshold: float = 0.95, block: int = 2048) -> list[Pair]:
    """Pairs of rows (L2-normalised embeddings) with cosine similarity >= threshold,
    sorted by (a, b); one block x block product at a time, upper triangle only."""
    vectors = np.asarray(vectors, dtype=np.float32)
    n = len(vectors)
    pairs = []
    for lo in range(0, n, block):
        rows = vectors[lo : lo + block]
        found_a, found_b, found_s = [], [], []
        for col in range(lo, n, block):
            product = rows @ vectors[col : col + block].T
            hit = product >= threshold
            if col == lo:
                hit = np.triu(hit, k=1)
            i, j = np.nonzero(hit)
            found_a.append(i + lo)
            found_b.append(j + col)
            found_s.append(product[i, j])
        a, b, s = np.concatenate(found_a), np.concatenate(found_b), np.concatenate(found_s)
        order = np.lexsort((b, a))
        pairs.extend(Pair(int(a[k]), int(b[k]), round(min(float(s[k]), 1.0), 4)) for k in order)
    return pairs


class NearIndex:
    """Texts to look new texts up in: which of them is a near duplicate of a query.

    Built once (the same shingles, signatures and bands as `find_pairs`); each band's keys are
    kept sorted, so a query is a binary search per band and an exact Jaccard check of the
    candidates it finds. Generation jobs build one over a project's examples and check every
    draft against it.
    """

    def __init__(self, texts: Sequence[str], *, threshold: float = 0.8, num_perm: int = 128, ngram: int = 3) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        self.threshold = threshold
        self.num_perm = num_perm
        self.ngram = ngram
        self.bands, self.rows = lsh_params(threshold, num_perm)
        self.size = n = len(texts)
        self._keys: list[np.ndarray] = []
        self._order: list[np.ndarray] = []
        signed = np.empty((n, num_perm), dtype=_U32)
        flats, offsets = [np.empty(0, dtype=_U32)], [np.zeros(1, dtype=np.int64)]
        for lo in range(0, n, _CHUNK_DOCS):
            flat, chunk_offsets = _shingle_sets(_normalise_many(texts[lo : lo + _CHUNK_DOCS]), ngram=ngram)
            signed[lo : lo + _CHUNK_DOCS] = _signatures(flat, chunk_offsets, num_perm=num_perm, seed=1)
            flats.append(flat)
            offsets.append(chunk_offsets[1:] + offsets[-1][-1])
        self._flat, self._offsets = np.concatenate(flats), np.concatenate(offsets)
        if not n:
            return
        for band in range(self.bands):
            keys = _band_keys(signed[:, band * self.rows : (band + 1) * self.rows])
            order = np.argsort(keys, kind="stable")
            self._keys.append(keys[order])
            self._order.append(order)

    def query(self, text: str) -> list[tuple[int, float]]:
        """(index, Jaccard similarity) of the indexed texts at or above the threshold, best first."""
        if not self.size:
            return []
        mine = np.unique(shingle_hashes(text, ngram=self.ngram))
        offsets = np.array([0, len(mine)], dtype=np.int64)
        signed = _signatures(mine.astype(_U32), offsets, num_perm=self.num_perm, seed=1)
        found: set[int] = set()
        for band in range(self.bands):
            key = _band_keys(signed[:, band * self.rows : (band + 1) * self.rows])[0]
            keys = self._keys[band]
            lo, hi = np.searchsorted(keys, key, side="left"), np.searchsorted(keys, key, side="right")
            found.update(int(i) for i in self._order[band][lo:hi])
        hits = []
        for index in found:
            other = self._flat[self._offsets[index] : self._offsets[index + 1]]
            union = len(np.union1d(mine, other))
            similarity = len(np.intersect1d(mine, other, assume_unique=True)) / union if union else 1.0
            if similarity >= self.threshold:
                hits.append((index, round(similarity, 4)))
        return sorted(hits, key=lambda hit: (-hit[1], hit[0]))


def _band_keys(band: np.ndarray) -> np.ndarray:
    """One 64-bit key per row of a band, as `_band_candidates` computes it."""
    key = np.full(len(band), _MIX_SEED, dtype=_U64)
    for column in band.T:
        key = (key ^ column.astype(_U64)) * _MIX_PRIME
    return _fmix64(key)
