"""Uploads and searches run in threads at once: the shared embedder must not mix them up.

A Hugging Face tokenizer reconfigures its padding on every call, so counting tokens
(chunking an upload) while another thread embeds (a search) used to hand the embedder
an unpadded batch: a 500 under load. Here threads embed and count at the same time and
every result must equal the one computed alone.
"""

from __future__ import annotations

import random
import threading
from typing import Any

import numpy as np

SENTENCES = [
    "The harbour master counts the green umbrellas every spring.",
    "Attention layers relate every position of a sequence to every other.",
    "A short one.",
    "Seven bakers on Rue Clair sell blue croissants before dawn, and the queue is long.",
]


def test_embedding_and_counting_from_many_threads_agree_with_one_thread(embedder: Any) -> None:
    rng = random.Random(11)
    batches = [rng.sample(SENTENCES, k=rng.randint(1, 3)) for _ in range(30)]
    texts = [" ".join(rng.choices(SENTENCES, k=rng.randint(1, 6))) for _ in range(3_000)]
    expected_vectors = {tuple(b): embedder.embed(b) for b in batches}
    expected_counts = {t: embedder.count_tokens(t) for t in set(texts)}
    problems: list[str] = []

    def embed(share: list[list[str]]) -> None:
        for batch in share:
            try:
                vectors = embedder.embed(batch)
            except Exception as exc:
                problems.append(f"embed raised {type(exc).__name__}")
                continue
            if not np.allclose(vectors, expected_vectors[tuple(batch)], atol=1e-2):
                problems.append("embed returned different vectors")

    def count(share: list[str]) -> None:
        for text in share:
            try:
                if embedder.count_tokens(text) != expected_counts[text]:
                    problems.append("count_tokens returned a different count")
            except Exception as exc:
                problems.append(f"count_tokens raised {type(exc).__name__}")

    threads = [threading.Thread(target=embed, args=(batches[i::2],)) for i in range(2)]
    threads += [threading.Thread(target=count, args=(texts[i::2],)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert problems == []
