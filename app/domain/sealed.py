"""Secrets kept in the database are sealed with Fernet (`cryptography`), key PARTNERS_SECRETS_KEY.

Several comma-separated keys allow rotating it: the first seals, every one opens. Production refuses
to start without a key; elsewhere a fixed development key (not a secret) is used when none is set.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, MultiFernet

from app.settings import Settings

_DEVELOPMENT_KEY = base64.urlsafe_b64encode(hashlib.sha256(b"qalyptus-partners development only").digest())


@lru_cache(maxsize=8)
def _box(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in keys] or [Fernet(_DEVELOPMENT_KEY)])


def box(settings: Settings) -> MultiFernet:
    return _box(tuple(key.get_secret_value() for key in settings.secrets_key))


def seal(settings: Settings, secret: str) -> str:
    return box(settings).encrypt(secret.encode()).decode()


def open_sealed(settings: Settings, token: str) -> str:
    return box(settings).decrypt(token.encode()).decode()
