"""Deterministic stand-ins for the two models, for tests and benchmarks where the model is not
the point (routes, UI, isolation, limits, the answer flow's own logic).

``HashingEmbedder`` is the ``Embedder`` protocol without a neural network: the bundled model's
own tokenizer counts tokens (so chunking is exactly production's) and each text's vector is its
content words, crudely stemmed, hashed into ``dimension`` signed buckets, so texts that share
words are near and texts that share none are nearly orthogonal. It loads in milliseconds and
embeds a paper in a few.

``ScriptedGenerator`` is the ``Generator`` protocol answering scripted text: one fixed reply,
a list of replies in call order, or a function of the prompt.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Callable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
from bm25s.stopwords import STOPWORDS_EN

from core.errors import GeneratorUnavailableError
from ingest.chunking import TokenizerCounter
from rag.embedding import max_sequence_length, resolve_model_path
from rag.generation import GeneratorInfo, GeneratorStatus, Message

WORD = re.compile(r"\w+")
SUFFIXES = ("ing", "ed", "es", "s")  # a crude stemmer: "trained" and "train" share a bucket
STOPWORDS = frozenset(STOPWORDS_EN)
HASHING_DIMENSION = 384  # the bundled model's, so index and cache sizes read the same
SPECIAL_TOKENS = 2  # [CLS] and [SEP], as the bundled model adds them


@lru_cache(maxsize=200_000)
def _bucket(word: str, dimension: int) -> tuple[int, float]:
    """The word's bucket and sign: a stable hash (not ``hash()``, which changes per process)."""
    for suffix in SUFFIXES:
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            word = word[: -len(suffix)]
            break
    digest = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
    return digest % dimension, 1.0 if digest >> 63 else -1.0


@lru_cache(maxsize=1)
def _bundled_tokenizer_json() -> tuple[str, int]:
    folder = Path(resolve_model_path("bundled"))
    return (folder / "tokenizer.json").read_text(encoding="utf-8"), max_sequence_length(folder)


class HashingEmbedder:
    """Words hashed into signed buckets, L2-normalized; the bundled model's token counts."""

    def __init__(self, dimension: int = HASHING_DIMENSION) -> None:
        tokenizer_json, max_length = _bundled_tokenizer_json()
        self.name = "hashing-fake"
        self.device = "cpu"
        self.dtype = "float32"
        self.dimension = dimension
        self.max_tokens = max_length - SPECIAL_TOKENS
        self.count_tokens: Callable[[str], int] = TokenizerCounter(tokenizer_json)
        self.calls = 0  # embed() calls, for tests that check a cache or a batch

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            # Stop words would make every two sentences alike; a text with no other word
            # (empty, punctuation, "the") still gets a unit vector of its own.
            words = [w for w in WORD.findall(text.lower()) if w not in STOPWORDS]
            for word in words or [text]:
                column, sign = _bucket(word, self.dimension)
                vectors[row, column] += sign
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        normalized: np.ndarray = vectors / np.maximum(norms, 1e-12)
        return normalized


DEFAULT_REPLY = "The big model was trained on 8 P100 GPUs [1]."
Script = str | Sequence[str] | Callable[[Sequence[Message]], str]


class ScriptedGenerator:
    """The ``Generator`` protocol over scripted replies, streamed word by word.

    ``replies``: one text for every call; a list, one per call in order (a call past its end
    fails the test); or a function from the prompt's messages to the reply. ``available``
    False makes every call fail as an unreachable server would; ``fail_after_words`` cuts
    the stream mid-answer. Every prompt is kept in ``prompts``.
    """

    def __init__(self, replies: Script = DEFAULT_REPLY, *, model: str = "scripted") -> None:
        self._script: Script = replies
        self._served = 0
        self.model = model
        self.available = True
        self.fail_after_words: int | None = None  # the server dies mid-answer
        self.down_status = GeneratorStatus.UNAVAILABLE  # what status() says while unavailable
        self.context_length = 4096
        self.prompts: list[Sequence[Message]] = []

    @property
    def answer(self) -> str:
        """The one fixed reply (set it to script a new one)."""
        if not isinstance(self._script, str):
            raise TypeError("this ScriptedGenerator has no single fixed reply")
        return self._script

    @answer.setter
    def answer(self, text: str) -> None:
        self._script = text

    @property
    def last_messages(self) -> Sequence[Message]:
        return self.prompts[-1] if self.prompts else []

    def reply(self, messages: Sequence[Message]) -> str:
        """The next scripted reply to this prompt (recorded in ``prompts``)."""
        self.prompts.append(messages)
        if isinstance(self._script, str):
            return self._script
        if callable(self._script):
            return self._script(messages)
        if self._served >= len(self._script):
            raise AssertionError(f"ScriptedGenerator: all {len(self._script)} replies are used")
        self._served += 1
        return self._script[self._served - 1]

    def _check(self) -> None:
        if not self.available:
            raise GeneratorUnavailableError("The language model is not reachable.")

    async def status(self) -> GeneratorStatus:
        return GeneratorStatus.READY if self.available else self.down_status

    async def info(self) -> GeneratorInfo:
        self._check()
        return GeneratorInfo(model=self.model, context_length=self.context_length)

    async def count_tokens(self, messages: Sequence[Message]) -> int:
        self._check()
        return sum(len(m["content"]) // 4 for m in messages)

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int,
        temperature: float,
        stop: Sequence[str] = (),
    ) -> AsyncIterator[str]:
        self._check()
        for index, word in enumerate(self.reply(messages).split(" ")):
            if index == self.fail_after_words:
                raise GeneratorUnavailableError("Lost the connection to the LLM server mid-answer.")
            yield word + " "

    async def aclose(self) -> None:
        pass
