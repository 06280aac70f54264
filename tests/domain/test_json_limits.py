"""The JSON depth bound: the count of openers that skips the scan never changes what is refused."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.json_limits import JsonTooDeep, _scan, check_depth

_PIECES = st.sampled_from([b"[", b"]", b"{", b"}", b'"', b"\\", b"a", b",", b":"])


def _refused(check: Callable[[bytes, int], None], body: bytes, max_depth: int) -> bool:
    try:
        check(body, max_depth)
    except JsonTooDeep:
        return True
    return False


@pytest.mark.parametrize(
    ("body", "refused"),
    [
        (b"[" * 4 + b"]" * 4, False),  # exactly the bound: as many openers as the bound, skipped
        (b"[" * 5 + b"]" * 5, True),  # one level more: scanned and refused
        (b'{"a": [1, 2], "b": [3], "c": {"d": 4}}', False),  # five openers, two levels: scanned, fine
        (b'["[[[[[[", "{{{{"]', False),  # brackets inside strings are text
        (b'["\\"[[[[[[[["]', False),  # an escaped quote does not end the string
        (b"[[[[[", True),  # need not be valid JSON
    ],
)
def test_the_bound_is_the_same_with_or_without_the_count(body: bytes, refused: bool) -> None:
    assert _refused(check_depth, body, 4) is refused
    assert _refused(_scan, body, 4) is refused


@given(st.lists(_PIECES, max_size=60), st.integers(0, 8))
def test_the_count_never_changes_what_the_scan_decides(parts: list[bytes], max_depth: int) -> None:
    body = b"".join(parts)
    assert _refused(check_depth, body, max_depth) == _refused(_scan, body, max_depth)
