"""What every use case is told about the request it serves."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

CallerKind = Literal["admin", "partner", "store", "public", "cli", "system", "user"]


@dataclass(frozen=True)
class Caller:
    kind: CallerKind
    key_id: uuid.UUID | None = None
    partner_id: uuid.UUID | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    user_id: uuid.UUID | None = None
    """A signed-in user's id (kind `user`)."""
    role: str | None = None
    """A signed-in user's role."""

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        if self.kind == "user":
            return f"user:{self.user_id}"
        if self.kind == "partner":
            return f"partner:{self.partner_id}"
        if self.key_id is not None:
            return f"{self.kind}:{self.key_id}"
        return self.kind


@dataclass(frozen=True)
class Context:
    caller: Caller
    now: datetime
    request_id: str | None = None

    @property
    def actor(self) -> str:
        return self.caller.actor
