"""The limits the API's own request models declare, so the page's controls stay within them."""

from __future__ import annotations

import annotated_types
from pydantic import BaseModel


def number_range(model: type[BaseModel], field: str) -> tuple[float, float]:
    """The lowest and highest value ``model`` accepts for ``field`` (its ge and le)."""
    constraints = model.model_fields[field].metadata
    low = next(c.ge for c in constraints if isinstance(c, annotated_types.Ge))
    high = next(c.le for c in constraints if isinstance(c, annotated_types.Le))
    if not isinstance(low, int | float) or not isinstance(high, int | float):
        raise TypeError(f"{model.__name__}.{field} is not bounded by numbers")
    return low, high


def max_length(model: type[BaseModel], field: str) -> int:
    """The longest text ``model`` accepts for ``field``."""
    constraints = model.model_fields[field].metadata
    return next(c.max_length for c in constraints if isinstance(c, annotated_types.MaxLen))
