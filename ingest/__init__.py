"""Bytes in memory -> pages -> chunks. Knows nothing of HTTP, embeddings or indexes."""
