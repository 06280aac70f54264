"""Validation errors in words: what a value should be, as a sentence a person can act on."""

from __future__ import annotations

from typing import Any


def _shown(value: Any) -> str:
    """A refused value as a refusal quotes it: short, one line, and never a whole body."""
    if isinstance(value, str) and value.isprintable() and 0 < len(value) <= 40:
        return value
    text = repr(value) if isinstance(value, str) else type(value).__name__
    return text if len(text) <= 40 else f"{text[:37]}..."


def sentence(err: Any) -> str:
    """A validation error as a sentence a person can act on: what the value should be, in words
    (never a regular expression), beginning with a capital and ending with a full stop."""
    from app.routers.fields import describe_pattern

    kind = str(err.get("type", ""))
    message = str(err.get("msg", "Invalid value"))
    if kind == "string_pattern_mismatch":
        meaning = describe_pattern(str((err.get("ctx") or {}).get("pattern", "")))
        value = err.get("input")
        message = f"{_shown(value)} is not {meaning}" if meaning else f"{_shown(value)} does not have the expected form"
    elif kind == "missing":
        message = "This value is required"
    elif kind == "extra_forbidden" and message == "Extra inputs are not permitted":
        message = "This field is not accepted here"
    message = message.removeprefix("Value error, ").strip()
    first = message.split(" ", 1)[0]
    if first.isalpha() and first.islower():  # a word, not a field's or a code's name (tax_amount, XXQ)
        message = message[:1].upper() + message[1:]
    return message if message.endswith((".", "?", "!")) else f"{message}."
