"""A near-duplicate search as clients ask for it: query parameters parsed into one ``SimilarQuery``, which
ingest forwards to a worker and the worker's replica of the index answers (sink/similar.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from adapters.phash_index import MAX_DISTANCE
from media.phash import parse_hash
from schemas.errors import InvalidParameter

DEFAULT_MAX_DISTANCE = 10
DEFAULT_LIMIT = 20
MAX_LIMIT = 1000


@dataclass(frozen=True)
class SimilarQuery:
    """A search of the index, as the ingest service sends it to a worker (``as_params``) and the worker reads it
    back (``parse_query``)."""

    phash: str
    max_distance: int
    limit: int
    mirror: bool = False
    # Known when the query is an image or a job: the mirror of an image cannot be derived from its hash.
    mirrored_phash: str | None = None
    sha256: str | None = None
    exclude: str | None = None
    # The key_id whose images are searched; None searches the images no key made.
    owner: str | None = None

    def as_params(self) -> dict[str, str]:
        params = {"phash": self.phash, "max_distance": str(self.max_distance), "limit": str(self.limit)}
        if self.mirror:
            params["transforms"] = "mirror"
        extra = {"mirrored_phash": self.mirrored_phash, "sha256": self.sha256, "exclude": self.exclude,
                 "owner": self.owner}  # fmt: skip
        return params | {name: value for name, value in extra.items() if value is not None}


def parse_query(query: Mapping[str, str], phash: str | None = None) -> SimilarQuery:
    """A similarity search's parameters, each bad one refused with a message naming it.

    ``phash`` overrides the query string's when the query is a job or an uploaded image.
    """
    hash_ = hash_param("phash", phash if phash is not None else query.get("phash"))
    mirrored = query.get("mirrored_phash")
    max_distance = _int_param(query, "max_distance", DEFAULT_MAX_DISTANCE, 0, MAX_DISTANCE, "invalid_distance")
    limit = _int_param(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT, "invalid_limit")
    transforms = [t for t in query.get("transforms", "").split(",") if t]
    if any(t != "mirror" for t in transforms):
        raise InvalidParameter(f"transforms may only be 'mirror', not {transforms}", code="invalid_transforms")
    return SimilarQuery(
        phash=hash_, max_distance=max_distance, limit=limit, mirror=bool(transforms),
        mirrored_phash=None if mirrored is None else hash_param("mirrored_phash", mirrored),
        sha256=query.get("sha256"), exclude=query.get("exclude"), owner=query.get("owner"),
    )  # fmt: skip


def hash_param(name: str, raw: str | None) -> str:
    if raw is None:
        raise InvalidParameter(f"{name} is required: 16 hex digits, e.g. f06830ca9f1e3e90", code="invalid_phash")
    try:
        return f"{parse_hash(raw):016x}"
    except InvalidParameter as exc:
        raise InvalidParameter(f"{name}: {exc.message}", code="invalid_phash") from None


def _int_param(query: Mapping[str, str], name: str, default: int, low: int, high: int, code: str) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise InvalidParameter(f"{name} must be a whole number from {low} to {high}, got {raw!r}", code=code)
    return value
