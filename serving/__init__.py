"""The edges: vLLM client and launcher, REST API, CLI."""
