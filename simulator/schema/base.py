"""Shared pydantic base and unit-parsing field types for every schema module."""
from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from simulator.errors import InputError
from simulator.units import parse_quantity


class Frozen(BaseModel):
    """Immutable, strict about unknown fields (a typo is an error, not ignored)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def _quantity(dimension: str):
    def parse(value):
        try:
            return parse_quantity(value, dimension)
        except InputError as exc:  # re-raised as ValueError so pydantic adds the field path
            raise ValueError(exc.message + (f" (expected {exc.expected})" if exc.expected else "")) from None
    return BeforeValidator(parse)


Positive = Field(gt=0)
NonNegative = Field(ge=0)

Bytes = Annotated[float, _quantity("bytes"), Field(gt=0)]
BytesPerS = Annotated[float, _quantity("bytes_per_s"), Field(gt=0)]
FlopsPerS = Annotated[float, _quantity("flops_per_s"), Field(gt=0)]
Seconds = Annotated[float, _quantity("seconds"), Field(ge=0)]
Watts = Annotated[float, _quantity("watts"), Field(gt=0)]
