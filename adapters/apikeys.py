"""API keys, kept in the object store as ``keys/{key_id}.json``: the key's SHA-256 digest, never the key.

A raw key reads ``ml_<key_id>_<secret>``: ``key_id`` (12 hex digits) names the record, so checking a
key reads one object; ``secret`` carries 256 random bits. The digest of the whole raw key is
compared in constant time. Workers read the same records for the key's webhook secret.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from schemas.messages import utcnow
from adapters.objects import ObjectStore

PREFIX = "keys/"
RAW_KEY = re.compile(r"ml_(?P<key_id>[0-9a-f]{12})_[A-Za-z0-9_-]{43}")


class ApiKey(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key_id: str
    name: str
    digest: str
    webhook_secret: str
    created_at: datetime
    revoked_at: datetime | None = None


def key_object(key_id: str) -> str:
    return f"{PREFIX}{key_id}.json"


def digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def key_id_of(raw: str) -> str | None:
    """The key id a well-formed raw key names; None for anything else."""
    match = RAW_KEY.fullmatch(raw)
    return match["key_id"] if match else None


class KeyStore:
    """Synchronous, like ObjectStore; async callers run it in a thread."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def create(self, name: str) -> tuple[str, ApiKey]:
        """A new key; the raw key is returned here and never again."""
        key_id = secrets.token_hex(6)
        raw = f"ml_{key_id}_{secrets.token_urlsafe(32)}"
        key = ApiKey(key_id=key_id, name=name, digest=digest(raw),
                     webhook_secret="whsec_" + secrets.token_urlsafe(32), created_at=utcnow())  # fmt: skip
        self.store.put_json(key_object(key_id), key.model_dump(mode="json"))
        return raw, key

    def get(self, key_id: str) -> ApiKey | None:
        if not re.fullmatch(r"[0-9a-f]{12}", key_id):
            return None
        document = self.store.get_json_or_none(key_object(key_id))
        return None if document is None else ApiKey.model_validate(document)

    def any(self) -> bool:
        return bool(self.store.list_page(PREFIX, None, 1))

    def list(self) -> list[ApiKey]:
        keys = [ApiKey.model_validate(self.store.get_json(name)) for name in self.store.list(PREFIX)]
        return sorted(keys, key=lambda key: key.created_at)

    def revoke(self, key_id: str) -> ApiKey | None:
        """The revoked key (revoking twice keeps the first time); None when there is no such key."""
        key = self.get(key_id)
        if key is None or key.revoked_at is not None:
            return key
        revoked = key.model_copy(update={"revoked_at": utcnow()})
        self.store.put_json(key_object(key_id), revoked.model_dump(mode="json"))
        return revoked

    def verify(self, raw: str) -> ApiKey | None:
        """The live key ``raw`` is; None for a malformed, unknown or revoked one."""
        key_id = key_id_of(raw)
        key = self.get(key_id) if key_id else None
        if key is None or not hmac.compare_digest(digest(raw), key.digest):
            return None
        return key if key.revoked_at is None else None
