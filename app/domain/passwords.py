"""Passwords: hashed with Argon2id (`pwdlib`), at least 12 characters and not weak by `zxcvbn`'s
estimate; secrets of single-use links and sessions, kept as their SHA-256 only."""

from __future__ import annotations

import functools
import hashlib
import secrets

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from zxcvbn import zxcvbn

from app.domain.errors import Invalid

MIN_LENGTH = 12
MAX_LENGTH = 256
"""Past this a password only costs the hasher time: refused."""
MIN_SCORE = 3
"""zxcvbn's score from 0 (too guessable) to 4: 3 and up ("safely unguessable") is accepted."""


@functools.cache
def _hasher(profile: str) -> PasswordHash:
    if profile == "cheap":  # tests only: the same algorithm, a fraction of the work
        return PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),))
    return PasswordHash((Argon2Hasher(),))  # pwdlib's recommended Argon2id parameters


def hash_password(password: str, profile: str = "standard") -> str:
    return _hasher(profile).hash(password)


def verify(password: str, hashed: str | None, profile: str = "standard") -> bool:
    """Whether `password` matches; with no hash (no such account, no password yet) a dummy is checked
    all the same, so an unknown account costs what a known one does."""
    if hashed is None:
        _hasher(profile).verify(password, _dummy(profile))
        return False
    return bool(_hasher(profile).verify(password, hashed))


@functools.cache
def _dummy(profile: str) -> str:
    return _hasher(profile).hash(secrets.token_urlsafe(16))


def check_strength(password: str, *, email: str, name: str | None = None) -> None:
    """Refuse a password shorter than 12 characters, longer than 256, or that zxcvbn scores weak
    (it knows the user's address and name: a password made of them is weak)."""
    if len(password) < MIN_LENGTH:
        raise Invalid(
            f"The password has {len(password)} characters; it needs at least {MIN_LENGTH}.",
            code="password_too_short",
            field="password",
        )
    if len(password) > MAX_LENGTH:
        raise Invalid(
            f"The password is longer than {MAX_LENGTH} characters.", code="password_too_long", field="password"
        )
    inputs = [email, *email.split("@")[0].split("."), *(name.split() if name else []), "qalyptus", "partner"]
    estimate = zxcvbn(password[:100], user_inputs=inputs)
    if estimate["score"] < MIN_SCORE:
        feedback = estimate["feedback"]
        hint = " ".join(x for x in [feedback.get("warning") or "", *feedback.get("suggestions", [])] if x)
        raise Invalid(
            "The password is too easy to guess." + (f" {hint}" if hint else " Use a longer, less common phrase."),
            code="password_too_weak",
            field="password",
        )


def new_secret() -> str:
    """A random secret for a link or a session: 256 bits, URL-safe."""
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """What is stored of a secret: its SHA-256, hex."""
    return hashlib.sha256(secret.encode()).hexdigest()
