"""Session-scoped real vLLM CPU server (filled in by serving work)."""
