"""JSON read with a bound on nesting depth.

Python's `json` parser recurses once per nesting level: a body of a thousand `[` raises
`RecursionError`, which is no `ValueError` and would escape as a 500. Depth is counted first,
on the structural characters only, so a too-deep document is refused as invalid input.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 32
"""Far more than any document of this API nests (a store event nests 4 levels)."""

_STRUCTURE = re.compile(rb'["\\\[\]{}]')


class JsonTooDeep(ValueError):
    """The document nests arrays and objects deeper than allowed."""

    def __init__(self, max_depth: int) -> None:
        super().__init__(f"JSON nests deeper than {max_depth} levels")
        self.max_depth = max_depth


def check_depth(body: bytes, max_depth: int = MAX_DEPTH) -> None:
    """Raise JsonTooDeep when `body` nests arrays or objects more than `max_depth` deep.
    Brackets inside strings do not count; the document need not be valid JSON."""
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return  # no more openers than the bound, wherever they are: it cannot nest deeper
    _scan(body, max_depth)


def _scan(body: bytes, max_depth: int) -> None:
    """The depth count itself: one pass over the structural characters (a Python loop)."""
    depth = 0
    in_string = False
    skip_to = -1  # the position after an escaped character inside a string
    for match in _STRUCTURE.finditer(body):
        position, char = match.start(), match.group()
        if in_string:
            if position < skip_to:
                continue
            if char == b"\\":
                skip_to = position + 2
            elif char == b'"':
                in_string = False
        elif char == b'"':
            in_string = True
        elif char in (b"[", b"{"):
            depth += 1
            if depth > max_depth:
                raise JsonTooDeep(max_depth)
        elif char in (b"]", b"}"):
            depth -= 1


def loads(body: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """`json.loads` that raises JsonTooDeep (a ValueError) instead of recursing without bound."""
    check_depth(body.encode() if isinstance(body, str) else body, max_depth)
    return json.loads(body)
