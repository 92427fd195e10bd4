"""Settings: rules across settings are refused at start-up with a message naming the variables."""

from __future__ import annotations

import pytest

from core.errors import ConfigError
from core.settings import load_settings


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            {"chunk_size_tokens": 200, "chunk_overlap_tokens": 300},
            "PGPT_CHUNK_OVERLAP_TOKENS (300) must be smaller than PGPT_CHUNK_SIZE_TOKENS (200): ",
        ),
        (
            {"max_chunks_per_session": 20, "max_total_chunks": 10},
            "PGPT_MAX_CHUNKS_PER_SESSION (20) cannot exceed PGPT_MAX_TOTAL_CHUNKS (10): ",
        ),
    ],
)
def test_a_rule_across_settings_names_both_variables_and_values(
    overrides: dict[str, int], message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(**overrides)
    assert raised.value.message.startswith(f"Invalid configuration: {message}")


def test_a_bad_single_value_names_its_variable() -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(top_k=0)
    assert raised.value.message == (
        "Invalid configuration: PGPT_TOP_K: Input should be greater than or equal to 1"
    )
