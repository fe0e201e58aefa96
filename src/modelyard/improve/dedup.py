"""Near duplicates: MinHash signatures of an input's character 5-grams, indexed with
datasketch's LSH, each candidate checked against the threshold before it counts.

Character n-grams rather than words: prompts are short (a changed word moves a word
3-gram set far more than a 5-gram one) and Chinese has no spaces. Only the items kept are
indexed, so memory grows with the distinct items, not with the rows read."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from modelyard.evaluate.contamination import normalized
from modelyard.lazy import lazy_module

datasketch = lazy_module("datasketch")

SHINGLE = 5
PRIME = 1_000_003  # the polynomial hash's multiplier (odd: no information lost mod 2**32)


def shingles(text: str, size: int = SHINGLE) -> list[bytes]:
    """The distinct character ``size``-grams of the normalized text (the text itself when
    shorter)."""
    norm = normalized(text)
    if len(norm) <= size:
        return [norm.encode("utf-8")]
    return list({norm[i : i + size].encode("utf-8") for i in range(len(norm) - size + 1)})


def shingle_hashes(text: str, size: int = SHINGLE) -> Any:
    """A 32-bit hash of each distinct character ``size``-gram of the normalized text, made
    with numpy over the code points at once (a polynomial hash; MinHash mixes it with its
    own finalizer): hashing each 5-gram with a Python call cost 4x as much."""
    import numpy as np

    points = np.frombuffer(normalized(text).encode("utf-32-le"), dtype=np.uint32)
    if len(points) <= size:
        return np.array([zlib.crc32(points.tobytes())], dtype=np.uint32)
    count = len(points) - size + 1
    hashes = np.zeros(count, dtype=np.uint32)
    for offset in range(size):
        hashes = hashes * np.uint32(PRIME) + points[offset : offset + count]
    return np.unique(hashes)


@dataclass(frozen=True)
class Match:
    key: int  # the kept item this one duplicates
    similarity: float  # estimated Jaccard similarity of their 5-gram sets


class NearDuplicates:
    """An LSH index of the items kept so far: ``match`` an item's signature, ``add`` it
    when it is kept."""

    def __init__(self, threshold: float, num_perm: int) -> None:
        self._threshold = threshold
        # Weighted against false negatives: candidates are checked against the threshold
        # anyway, so a false positive costs a comparison, a false negative a duplicate kept.
        try:
            self._lsh: Any = datasketch.MinHashLSH(threshold, num_perm, weights=(0.1, 0.9))
        except ValueError:  # a threshold so high that the best split is one band
            self._lsh = datasketch.MinHashLSH(num_perm=num_perm, params=(2, num_perm // 2))
        # One MinHash whose permutations every signature copies (made once: drawing them
        # per item would cost more than hashing the item).
        self._empty: Any = datasketch.MinHash(num_perm=num_perm, hashfunc=int)
        self._num_perm = num_perm
        # The hash values of each kept item's signature (uint32: 512 bytes at 128).
        self._signatures: dict[int, Any] = {}

    def signature(self, text: str) -> Any:
        minhash = self._empty.copy()
        minhash.update_batch(shingle_hashes(text).tolist())
        return minhash

    def match(self, signature: Any) -> Match | None:
        """The most similar kept item at or above the threshold, if any."""
        values = signature.hashvalues
        best: Match | None = None
        for candidate in self._lsh.query(signature):
            same = int((values == self._signatures[candidate]).sum())
            similarity = same / self._num_perm
            if similarity >= self._threshold and (best is None or similarity > best.similarity):
                best = Match(candidate, similarity)
        return best

    def add(self, key: int, signature: Any) -> None:
        self._lsh.insert(key, signature, check_duplication=False)
        self._signatures[key] = signature.hashvalues
