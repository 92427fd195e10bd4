"""Embedding, in-memory indexes, sessions, retrieval, prompts and citations."""
