"""The CPU embedder's oneDNN kernel cache is bounded by a setting, unless set explicitly."""

from __future__ import annotations

import os

import pytest

from rag.embedding import limit_kernel_cache

VARIABLE = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"


def unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset for this test only: monkeypatch restores what was there, set or not."""
    monkeypatch.setenv(VARIABLE, "recorded")
    monkeypatch.delenv(VARIABLE)


@pytest.mark.parametrize(("explicit", "capacity", "expected"), [(None, 32, "32"), ("8", 32, "8")])
def test_the_setting_bounds_the_cache_unless_the_variable_is_set(
    monkeypatch: pytest.MonkeyPatch, explicit: str | None, capacity: int, expected: str
) -> None:
    if explicit is None:
        unset(monkeypatch)
    else:
        monkeypatch.setenv(VARIABLE, explicit)
    limit_kernel_cache(capacity)
    assert os.environ[VARIABLE] == expected


def test_zero_keeps_onednns_default(monkeypatch: pytest.MonkeyPatch) -> None:
    unset(monkeypatch)
    limit_kernel_cache(0)
    assert VARIABLE not in os.environ
