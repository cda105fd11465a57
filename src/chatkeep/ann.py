"""Approximate nearest neighbours by inner product: an inverted-file index from FAISS.

The rows are split into ``nlist`` lists by a coarse quantizer (spherical k-means,
trained on a seeded sample of about 40 rows per list), and a query reads only the
``nprobe`` lists whose centroids score best against it, exactly, instead of every row.
The index itself is ``faiss.IndexIVFFlat`` (FAISS, https://github.com/facebookresearch/faiss,
MIT): it keeps a full float32 copy of each row, grouped by list, and scans the probed
lists with SIMD code. Probing every list is exact.

The index is derived: it lives in memory only, is built from the stored vectors when
a search first needs it, and can always be built again from them. A trained set of
centroids can be kept and reused for a later build (new rows are filed under the old
lists, skipping the training). ``faiss`` is imported on first use, so that the many
callers that never build an index do not pay for loading it.

Built for unit-length rows (cosine similarity), where the inner product ranks as the
distance does; any rows work, recall is what changes. Recall depends on the data: on
embeddings of real text (clusters of related meaning) a few percent of the lists find
nearly all of the ten best rows; on random vectors, which have no structure to exploit,
no index of any kind does well (see ``bench/ann_recall.py``).
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_NPROBE",
    "HALF_ERROR",
    "HalfScreen",
    "IVFIndex",
    "Screened",
    "default_nlist",
    "train_centroids",
]

Float32Array = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

#: Lists read per query unless told otherwise (chosen with ``bench/ann_recall.py``).
DEFAULT_NPROBE: Final = 32
#: Training rows per list (a seeded sample), and k-means iterations.
_SAMPLE_PER_LIST: Final = 40
_ITERATIONS: Final = 10

_FAISS: Any = None
_FAISS_LOCK = threading.Lock()


def _faiss() -> Any:
    """The ``faiss`` module, imported once, on first use."""
    global _FAISS
    with _FAISS_LOCK:
        if _FAISS is None:
            import faiss

            _FAISS = faiss
        return _FAISS


def default_nlist(rows: int) -> int:
    """About ``sqrt(rows)`` lists (1,000 at a million rows), at least one."""
    return max(1, min(rows, round(math.sqrt(rows))))


def _as_matrix(vectors: npt.ArrayLike) -> Float32Array:
    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    if matrix.ndim != 2:
        raise ValueError(f"expected a 2-D array of rows, got {matrix.ndim} dimension(s)")
    return matrix


def train_centroids(
    vectors: npt.ArrayLike, nlist: int | None = None, seed: int = 0
) -> Float32Array:
    """``nlist`` unit centroids by spherical k-means on a seeded sample of ``vectors``
    (the same seed and rows, the same centroids)."""
    matrix = _as_matrix(vectors)
    rows = len(matrix)
    if rows == 0:
        raise ValueError("cannot train centroids on no rows")
    lists = min(rows, nlist if nlist is not None else default_nlist(rows))
    if lists < 1:
        raise ValueError(f"nlist must be at least 1, got {nlist}")
    size = min(rows, lists * _SAMPLE_PER_LIST)
    picked = np.sort(np.random.default_rng(seed).choice(rows, size=size, replace=False))
    sample = np.ascontiguousarray(matrix[picked])
    faiss = _faiss()
    kmeans = faiss.Kmeans(
        matrix.shape[1],
        lists,
        niter=_ITERATIONS,
        seed=seed,
        spherical=True,
        max_points_per_centroid=_SAMPLE_PER_LIST,  # the sample is already this size
        min_points_per_centroid=1,  # small inputs are fine: no warning on stderr
    )
    kmeans.train(sample)
    centroids: Float32Array = np.ascontiguousarray(kmeans.centroids, dtype=np.float32)
    return centroids


@dataclass(frozen=True, slots=True)
class IVFIndex:
    """``faiss`` IVF index over rows ``0 .. len - 1`` of the array it was built from
    (the ids it returns are those row numbers), with the centroids that file them."""

    centroids: Float32Array
    trained_rows: int
    rows: int
    dimension: int
    _index: Any  # faiss.IndexIVFFlat, or None when there are no rows

    @classmethod
    def build(
        cls,
        vectors: npt.ArrayLike,
        *,
        nlist: int | None = None,
        seed: int = 0,
        centroids: Float32Array | None = None,
        trained_rows: int | None = None,
    ) -> IVFIndex:
        """Index ``vectors`` (FAISS keeps its own copy), training centroids unless given.

        Reusing the centroids of an earlier build skips training: the lists stay right
        for rows of the same kind, only less even as the rows drift from those they
        were trained on (``trained_rows``, kept for the caller to judge).
        """
        matrix = _as_matrix(vectors)
        dimension = int(matrix.shape[1])
        if centroids is None:
            if len(matrix) == 0:
                empty = np.zeros((0, dimension), dtype=np.float32)
                return cls(empty, 0, 0, dimension, None)
            centroids = train_centroids(matrix, nlist, seed)
            trained_rows = len(matrix)
        if centroids.ndim != 2 or centroids.shape[1] != dimension:
            raise ValueError(f"rows have {dimension} dimensions, the centroids {centroids.shape}")
        if not len(centroids):
            raise ValueError("an index needs at least one centroid")
        faiss = _faiss()
        quantizer = faiss.IndexFlatIP(dimension)
        quantizer.add(np.ascontiguousarray(centroids, dtype=np.float32))
        index = faiss.IndexIVFFlat(quantizer, dimension, len(centroids), faiss.METRIC_INNER_PRODUCT)
        if len(matrix):
            index.add(matrix)
        used = trained_rows if trained_rows is not None else len(matrix)
        return cls(centroids, used, len(matrix), dimension, index)

    @property
    def nlist(self) -> int:
        return len(self.centroids)

    def __len__(self) -> int:
        return self.rows

    def list_sizes(self) -> IntArray:
        """How many rows each list holds (for reports: how even the lists came out)."""
        if self._index is None:
            return np.zeros(self.nlist, dtype=np.int64)
        lists = self._index.invlists
        return np.fromiter(
            (lists.list_size(number) for number in range(self.nlist)), np.int64, self.nlist
        )

    def search(
        self, query: npt.ArrayLike, k: int, nprobe: int = DEFAULT_NPROBE
    ) -> tuple[IntArray, Float32Array]:
        """The ``k`` best rows among the ``nprobe`` lists nearest ``query``, best first
        (ties by row), and their inner products. Fewer when those lists hold fewer rows;
        every row, exactly ranked, when ``nprobe`` covers all lists."""
        vector = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        if vector.shape[1] != self.dimension:
            raise ValueError(
                f"the query has {vector.shape[1]} dimensions, the index {self.dimension}"
            )
        if k < 1 or nprobe < 1:
            raise ValueError("k and nprobe must be at least 1")
        if self._index is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        faiss = _faiss()
        params = faiss.SearchParametersIVF(nprobe=min(nprobe, self.nlist))
        # FAISS searches are safe from several threads at once (reads only).
        scores, found = self._index.search(vector, min(k, self.rows), params=params)
        keep = found[0] >= 0  # -1: fewer rows than ``k`` in the probed lists
        rows, values = found[0][keep].astype(np.int64), scores[0][keep].astype(np.float32)
        order = np.lexsort((rows, -values))
        return rows[order], values[order]


#: How far a half-precision score may sit from the exact one, per unit of
#: ``|query| * max |row|``: rounding to float16 moves each component by at most 2^-11
#: of itself, so a row by at most 2^-11 of its length; the rest covers float32 sums.
HALF_ERROR: Final = 2.0**-10
#: The rows are screened in this many parts at once, one thread each.
SCREEN_THREADS: Final = max(1, min(4, os.cpu_count() or 1))

#: The largest float16 value: a row with a larger component has no half-precision copy.
_HALF_MAX: Final = 65_504.0

_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(SCREEN_THREADS, thread_name_prefix="chatkeep-screen")
        return _POOL


def _after_fork_in_child() -> None:
    """A forked child has none of the pool's threads (work sent to them would wait
    forever) and may hold a lock another thread held at the fork: start afresh."""
    global _POOL, _POOL_LOCK, _FAISS_LOCK
    _POOL, _POOL_LOCK, _FAISS_LOCK = None, threading.Lock(), threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


@dataclass(frozen=True, slots=True)
class Screened:
    """What a screen found: candidate rows, their half-precision scores, and ``unseen``:
    no row left out scores better than it, exactly (minus infinity: none was left out)."""

    rows: IntArray
    scores: Float32Array
    unseen: float


@dataclass(frozen=True, slots=True)
class HalfScreen:
    """Every row in half precision (``faiss.IndexScalarQuantizer``, fp16), in parts
    scanned by several threads at once: half the bytes of the float32 matrix to read,
    and the cores to read them (one query's scan is what FAISS does not split well).
    Its scores are within :data:`HALF_ERROR` ``* |query| * longest`` of the exact
    ones, so a caller can rank the candidates exactly and know how far that ranking
    holds (:attr:`Screened.unseen`)."""

    rows: int
    dimension: int
    longest: float  # the largest row length (NaN or more than float16 holds: unusable)
    _parts: tuple[tuple[int, Any], ...]  # (first row, faiss index)

    @classmethod
    def build(cls, vectors: npt.ArrayLike, parts: int | None = None) -> HalfScreen:
        """Screen ``vectors`` in ``parts`` (default: one per screening thread)."""
        matrix = _as_matrix(vectors)
        faiss = _faiss()
        size = max(1, math.ceil(len(matrix) / max(1, parts or SCREEN_THREADS)))
        built = []
        for first in range(0, len(matrix), size):
            index = faiss.IndexScalarQuantizer(
                int(matrix.shape[1]), faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
            )
            index.add(matrix[first : first + size])
            built.append((first, index))
        longest = 0.0
        # (the largest magnitude from max and min: no temporary copy of the matrix)
        if len(matrix) and not max(float(matrix.max()), -float(matrix.min())) <= _HALF_MAX:
            longest = math.inf
        elif len(matrix):  # (squares of float16-sized values cannot overflow float32)
            longest = float(np.sqrt(np.einsum("ij,ij->i", matrix, matrix).max()))
        return cls(len(matrix), int(matrix.shape[1]), longest, tuple(built))

    def search(self, query: npt.ArrayLike, k: int) -> Screened:
        """The best ``k`` rows of each part by half-precision score."""
        vector = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        if k < 1:
            raise ValueError("k must be at least 1")
        others = [_pool().submit(_scan, index, vector, k) for _, index in self._parts[1:]]
        found = [_scan(self._parts[0][1], vector, k)] if self._parts else []
        found += [future.result() for future in others]
        rows, scores, unseen = [], [], -math.inf
        error = self.error(vector)
        for (first, index), (part_rows, part_scores) in zip(self._parts, found, strict=True):
            rows.append(part_rows + first)
            scores.append(part_scores)
            if len(part_rows) < index.ntotal:  # this part has rows it did not return
                # (none at all: FAISS drops rows whose score is NaN)
                lowest = float(part_scores[-1]) if len(part_rows) else math.inf
                bound = lowest + error
                unseen = max(unseen, math.inf if math.isnan(bound) else bound)
        if not rows:
            return Screened(np.zeros(0, np.int64), np.zeros(0, np.float32), unseen)
        return Screened(np.concatenate(rows), np.concatenate(scores), unseen)

    def error(self, query: npt.ArrayLike) -> float:
        """The most a half-precision score of ``query`` may differ from the exact one:
        the relative rounding of each component (:data:`HALF_ERROR`, widened by the
        float32 sum's own error over ``dimension`` terms), plus what rounding tiny
        components to float16's subnormals or to zero can lose (2^-25 each, doubled).
        Infinite when that cannot be bounded (NaN, or a component beyond float16)."""
        length = float(np.linalg.norm(query))
        relative = HALF_ERROR * (1 + self.dimension * 2.0**-13) * self.longest
        bound = length * (relative + math.sqrt(self.dimension) * 2.0**-24)
        return bound if math.isfinite(bound) else math.inf


def _scan(index: Any, vector: Float32Array, k: int) -> tuple[IntArray, Float32Array]:
    """One part's best ``k`` (best first), on one OpenMP thread: OpenMP keeps the
    thread count per calling thread, so this changes no other search."""
    faiss = _faiss()
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        scores, found = index.search(vector, min(k, index.ntotal))
    finally:
        faiss.omp_set_num_threads(before)
    keep = found[0] >= 0
    return found[0][keep].astype(np.int64), scores[0][keep].astype(np.float32)
