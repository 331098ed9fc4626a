"""Expiring download links: a token naming an object, its download name and its expiry, signed with
HMAC-SHA256 under ``MEDIALANE_LINK_SECRET``.

The link stops working at its expiry even if the object still exists (the bucket's lifecycle rule
deletes ``tmp/`` objects a day later anyway); the ingest service checks the token and streams the
object, so clients never need to reach the object store.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime

from schemas.errors import MedialaneError, NotFound
from schemas.settings import Settings


class LinkExpired(MedialaneError):
    status, code = 410, "link_expired"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(settings: Settings, payload: str) -> str:
    secret = settings.link_secret.get_secret_value()
    if not secret:
        # An empty key would let anyone forge a link to any object in the bucket.
        raise MedialaneError("MEDIALANE_LINK_SECRET is not set: download links cannot be signed", code="no_link_secret")
    return _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())


def sign(settings: Settings, key: str, filename: str, now: float | None = None) -> tuple[str, datetime]:
    """A download URL for ``key`` served as ``filename``, and when it stops working."""
    expires = int((now if now is not None else time.time()) + settings.link_ttl_seconds)
    payload = _b64(json.dumps({"k": key, "n": filename, "e": expires}, separators=(",", ":")).encode())
    token = f"{payload}.{_signature(settings, payload)}"
    return f"{settings.base_url}/v1/downloads/{token}", datetime.fromtimestamp(expires, UTC)


def verify(settings: Settings, token: str, now: float | None = None) -> tuple[str, str]:
    """The object key and download name of a valid, unexpired token."""
    payload, _, signature = token.partition(".")
    expected = _signature(settings, payload)
    if not signature or not hmac.compare_digest(signature, expected):
        raise NotFound("no such download", code="download_not_found")
    claims = json.loads(_unb64(payload))
    if claims["e"] <= (now if now is not None else time.time()):
        raise LinkExpired("this download link has expired")
    return claims["k"], claims["n"]
