"""Approximate nearest neighbours by inner product: an inverted-file (IVF) index in NumPy.

The rows are split into ``nlist`` lists by a coarse quantizer, and a query reads only
the ``nprobe`` lists whose centroids score best against it, exactly, instead of every
row. The quantizer is two-level spherical k-means (about ``sqrt(nlist)`` top centroids,
each split into list centroids in proportion to its share of the rows), trained on a
seeded sample (32 rows per list) with a few Lloyd iterations. A row goes to its best
list under its three best top centroids: about ``4 * sqrt(nlist)`` dot products
instead of ``nlist``, which makes building for a million rows take seconds rather
than a minute on two cores, and nearly always the list a flat search would choose.
Queries score every list centroid.

Rows are kept grouped by list in one contiguous float32 array, so reading a list is one
matrix-vector product on a slice. Everything is in memory and pure: no files, no SQL.
Built for unit-length rows (cosine similarity), where the inner product ranks as the
distance does; any rows work, recall is what changes.

Recall depends on the data: on embeddings of real text (clusters of related meaning)
a few percent of the lists find nearly all of the ten best rows; on random vectors,
which have no structure to exploit, no IVF does well (see ``bench/ann_recall.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["DEFAULT_NPROBE", "IVFIndex", "Quantizer", "default_nlist"]

Float32Array = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

#: Lists read per query unless told otherwise (chosen with ``bench/ann_recall.py``).
DEFAULT_NPROBE: Final = 64
#: Training rows per list and per top centroid, Lloyd iterations, and rows scored per
#: block while assigning.
_SAMPLE_PER_LIST: Final = 32
_SAMPLE_PER_TOP: Final = 256
_ITERATIONS: Final = 8
#: Top centroids under which a row looks for its list.
_BRANCHES: Final = 3
_BLOCK: Final = 32_768


def default_nlist(rows: int) -> int:
    """About ``4 * sqrt(rows)`` lists (4,000 at a million rows), at least one."""
    return max(1, min(rows, round(4 * math.sqrt(rows))))


def _as_matrix(vectors: npt.ArrayLike) -> Float32Array:
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim != 2:
        raise ValueError(f"expected a 2-D array of rows, got {matrix.ndim} dimension(s)")
    return matrix


def _nearest(rows: Float32Array, centroids: Float32Array) -> IntArray:
    """For each row, the centroid with the largest inner product (first on ties)."""
    return _nearest_scored(rows, centroids)[0]


def _nearest_scored(rows: Float32Array, centroids: Float32Array) -> tuple[IntArray, Float32Array]:
    """For each row, the centroid with the largest inner product (first on ties) and it."""
    best = np.empty(len(rows), dtype=np.int64)
    score = np.empty(len(rows), dtype=np.float32)
    for start in range(0, len(rows), _BLOCK):
        block = rows[start : start + _BLOCK] @ centroids.T
        chosen = block.argmax(axis=1)
        best[start : start + _BLOCK] = chosen
        score[start : start + _BLOCK] = block[np.arange(len(block)), chosen]
    return best, score


def _best(rows: Float32Array, centroids: Float32Array, count: int) -> IntArray:
    """For each row, the ``count`` centroids with the largest inner products, best first."""
    out = np.empty((len(rows), count), dtype=np.int64)
    for start in range(0, len(rows), _BLOCK):
        block = rows[start : start + _BLOCK] @ centroids.T
        every = np.arange(len(block))
        for rank in range(count):  # a few argmax passes beat argpartition on short rows
            chosen = block.argmax(axis=1)
            out[start : start + len(block), rank] = chosen
            block[every, chosen] = -np.inf
    return out


def _grouping(labels: IntArray) -> IntArray:
    """Indexes that sort ``labels`` (small integers), stably: a radix sort when it can."""
    if len(labels) and labels.max() < np.iinfo(np.int16).max:
        return np.argsort(labels.astype(np.int16), kind="stable")
    return np.argsort(labels, kind="stable")


def _scores(rows: Float32Array, vector: Float32Array) -> Float32Array:
    """``rows @ vector`` on this thread. BLAS would hand a product this small to a second
    thread, and on a busy machine waiting for it costs milliseconds, more than the work."""
    return np.einsum("ij,j->i", rows, vector)  # type: ignore[no-any-return]


def _unit(matrix: Float32Array) -> Float32Array:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    np.maximum(norms, np.float32(1e-12), out=norms)
    unit: Float32Array = (matrix / norms).astype(np.float32, copy=False)
    return unit


def _kmeans(sample: Float32Array, k: int, rng: np.random.Generator) -> Float32Array:
    """``k`` unit centroids by spherical k-means (Lloyd) on ``sample``; ``k <= len(sample)``."""
    centroids = _unit(sample[np.sort(rng.choice(len(sample), size=k, replace=False))])
    for _ in range(_ITERATIONS):
        assigned = _nearest(sample, centroids)
        grouped = sample[_grouping(assigned)]
        ends = np.cumsum(np.bincount(assigned, minlength=k)).tolist()
        # A sum per contiguous group: faster here than np.add.reduceat, np.add.at or a
        # product with a one-hot matrix.
        for centroid, (low, high) in enumerate(zip([0, *ends[:-1]], ends, strict=True)):
            if high > low:
                centroids[centroid] = grouped[low:high].sum(axis=0)
            else:  # re-seed an empty list on a random row
                centroids[centroid] = sample[rng.integers(len(sample))]
        centroids = _unit(centroids)
    return centroids


@dataclass(frozen=True, slots=True)
class Quantizer:
    """Two-level coarse quantizer: ``top`` centroids, and the ``centroids`` of the lists,
    those of top centroid ``t`` being ``centroids[bounds[t]:bounds[t + 1]]``."""

    top: Float32Array
    centroids: Float32Array
    bounds: IntArray
    trained_rows: int

    @property
    def nlist(self) -> int:
        return len(self.centroids)

    @property
    def dimension(self) -> int:
        return int(self.centroids.shape[1])

    @classmethod
    def train(cls, vectors: npt.ArrayLike, nlist: int | None = None, seed: int = 0) -> Quantizer:
        """Train on a seeded sample of ``vectors`` (the same seed and rows, the same lists)."""
        matrix = _as_matrix(vectors)
        rows = len(matrix)
        if rows == 0:
            raise ValueError("cannot train a quantizer on no rows")
        lists = min(rows, nlist if nlist is not None else default_nlist(rows))
        if lists < 1:
            raise ValueError(f"nlist must be at least 1, got {nlist}")
        rng = np.random.default_rng(seed)
        size = min(rows, lists * _SAMPLE_PER_LIST)
        sample = matrix[rng.choice(rows, size=size, replace=False)]
        tops = max(1, min(lists, round(math.sqrt(lists))))
        top = _kmeans(sample[: tops * _SAMPLE_PER_TOP], tops, rng)  # the sample is shuffled
        under = _nearest(sample, top)
        counts = np.bincount(under, minlength=len(top))
        # Fine lists per top centroid in proportion to its rows, so lists come out even.
        shares = np.minimum(counts, np.maximum(1, np.round(counts * lists / size))).astype(int)
        fine: list[Float32Array] = []
        for index in range(len(top)):
            if shares[index] == 0:
                continue  # a top centroid no sample row chose: keep it out
            members = sample[under == index]
            fine.append(_kmeans(members, int(shares[index]), rng))
        kept = np.flatnonzero(shares)
        bounds = np.concatenate(([0], np.cumsum(shares[kept]))).astype(np.int64)
        centroids = np.ascontiguousarray(np.concatenate(fine), dtype=np.float32)
        return cls(top=top[kept], centroids=centroids, bounds=bounds, trained_rows=rows)

    def assign(self, vectors: npt.ArrayLike, branches: int = _BRANCHES) -> IntArray:
        """The list of each row: its best fine centroid under its ``branches`` best top
        centroids (nearly always its best fine centroid of all, at a fraction of the cost)."""
        matrix = _as_matrix(vectors)
        if matrix.shape[1] != self.dimension:
            raise ValueError(f"rows have {matrix.shape[1]} dimensions, the lists {self.dimension}")
        if len(matrix) and not self.nlist:
            raise ValueError("this quantizer has no lists (it was trained on no rows)")
        tops = _best(matrix, self.top, min(branches, len(self.top)))
        by_top = _grouping(tops.ravel())
        cuts = np.searchsorted(tops.ravel()[by_top], np.arange(len(self.top) + 1))
        lists = np.zeros(len(matrix), dtype=np.int64)
        best = np.full(len(matrix), -np.inf, dtype=np.float32)
        for index in range(len(self.top)):
            members = by_top[cuts[index] : cuts[index + 1]] // tops.shape[1]
            if not len(members):
                continue
            low, high = int(self.bounds[index]), int(self.bounds[index + 1])
            fine, score = _nearest_scored(matrix[members], self.centroids[low:high])
            better = score > best[members]
            lists[members[better]] = low + fine[better]
            best[members[better]] = score[better]
        return lists


@dataclass(frozen=True, slots=True)
class IVFIndex:
    """Rows grouped by list: ``vectors[offsets[i]:offsets[i + 1]]`` is list ``i``, and
    ``vectors[slot]`` is row ``rows[slot]`` of the array the index was built from."""

    quantizer: Quantizer
    vectors: Float32Array
    rows: IntArray
    offsets: IntArray

    @classmethod
    def build(
        cls,
        vectors: npt.ArrayLike,
        *,
        nlist: int | None = None,
        seed: int = 0,
        quantizer: Quantizer | None = None,
    ) -> IVFIndex:
        """Index ``vectors`` (a copy, grouped by list), training a quantizer unless given one.

        Reusing the quantizer of an earlier build skips training: the lists stay right
        for rows of the same kind, only less even as the rows drift from those it saw.
        """
        matrix = _as_matrix(vectors)
        if quantizer is None:
            if len(matrix) == 0:
                empty = np.zeros((0, matrix.shape[1]), dtype=np.float32)
                quantizer = Quantizer(empty, empty, np.zeros(1, dtype=np.int64), 0)
            else:
                quantizer = Quantizer.train(matrix, nlist, seed)
        lists = quantizer.assign(matrix)
        order = _grouping(lists)
        counts = np.bincount(lists, minlength=quantizer.nlist)
        offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        return cls(quantizer, np.ascontiguousarray(matrix[order]), order, offsets)

    @property
    def dimension(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.vectors)

    def search(
        self, query: npt.ArrayLike, k: int, nprobe: int = DEFAULT_NPROBE
    ) -> tuple[IntArray, Float32Array]:
        """The ``k`` best slots (indexes into :attr:`vectors`) among the ``nprobe`` lists
        nearest ``query``, best first (ties by slot), and their inner products. Fewer
        when those lists hold fewer rows; every row when ``nprobe`` covers all lists."""
        vector = np.asarray(query, dtype=np.float32).reshape(-1)
        if len(vector) != self.dimension:
            raise ValueError(f"the query has {len(vector)} dimensions, the index {self.dimension}")
        if k < 1 or nprobe < 1:
            raise ValueError("k and nprobe must be at least 1")
        nlist = self.quantizer.nlist
        if nprobe >= nlist:
            probed = np.arange(nlist)
        else:
            coarse = _scores(self.quantizer.centroids, vector)
            probed = np.sort(np.argpartition(-coarse, nprobe - 1)[:nprobe])
        spans = [
            (int(self.offsets[i]), int(self.offsets[i + 1]))
            for i in probed
            if self.offsets[i + 1] > self.offsets[i]
        ]
        if not spans:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        scores = np.concatenate([_scores(self.vectors[low:high], vector) for low, high in spans])
        slots = np.concatenate([np.arange(low, high, dtype=np.int64) for low, high in spans])
        if k < len(scores):
            best = np.argpartition(-scores, k - 1)[:k]
            slots, scores = slots[best], scores[best]
        order = np.lexsort((slots, -scores))
        return slots[order], scores[order]
