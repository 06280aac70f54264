"""Numbers as JSON carries them."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, StrictInt


def _whole(value: object) -> object:
    # JSON has one number type: 8843.0 is the integer 8843, as JSON Schema's `integer` says. A
    # fraction, a string or a boolean is still refused.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _number(value: object) -> object:
    # Pydantic's lax float takes `true` and `"1.5"`; a JSON `number` is neither.
    if isinstance(value, bool | str | bytes):
        raise ValueError("must be a JSON number")
    return value


WHOLE = BeforeValidator(_whole)
"""Put after a strict `int` and its bounds: `Annotated[int, Field(strict=True, ge=0), WHOLE]` (bounds
after the validator would be lost from the JSON Schema of a dict's values or a list's items)."""
WholeInt = Annotated[StrictInt, WHOLE]
"""An integer in a JSON body: `8843` or `8843.0`, never `8843.5`, `"8843"` or `true`."""
NUMBER = BeforeValidator(_number)
"""Put after a `float` and its bounds: a JSON number, never `true` or `"1.5"`."""
