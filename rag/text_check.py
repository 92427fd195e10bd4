"""Check any text against a session's documents: a draft, a summary another tool wrote,
an answer pasted from elsewhere. Each sentence is searched for, and the passages found
are what the verifier checks every sentence against (the same verifier as answers)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from rag.citations import CITATION_PATTERN
from rag.retrieval import Hit
from rag.verification import CitationVerifier, Claim, split_claims

MAX_PASSAGES = 10  # the text's passages, best first: a long text's sentences share them


@dataclass(frozen=True, slots=True)
class CheckedText:
    claims: list[Claim]  # each sentence; its citation is the passage that backs it best
    sources: list[Hit]  # numbered from 1 by the claims' citations


async def check_text(
    text: str, search: Callable[[str], Awaitable[list[Hit]]], verifier: CitationVerifier
) -> CheckedText:
    """Label each sentence of ``text`` by the passages its sentences retrieve. Citation
    markers of the text point nowhere here and are dropped."""
    plain = CITATION_PATTERN.sub("", text)
    found: dict[tuple[str, int], Hit] = {}
    for sentence, _ in split_claims(plain):
        for hit in await search(sentence):
            key = (hit.chunk.document_id, hit.chunk.char_start)
            if key not in found or hit.score > found[key].score:
                found[key] = hit
    sources = sorted(found.values(), key=lambda h: -h.score)[:MAX_PASSAGES]
    if not sources:
        return CheckedText([], [])
    claims = await asyncio.to_thread(verifier.verify, plain, sources)
    return CheckedText(claims, sources)
