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
import threading
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

__all__ = ["DEFAULT_NPROBE", "IVFIndex", "default_nlist", "train_centroids"]

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
