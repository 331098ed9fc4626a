"""What a strip gives back, and the refusal every stripper may raise."""

from __future__ import annotations

from dataclasses import dataclass, field

from media.media_type import MediaType
from schemas.errors import MedialaneError
from schemas.messages import DEFAULT_KEEP, KeepItem

KEEP_DEFAULT = frozenset(DEFAULT_KEEP)
KEPT_GROUPS = {KeepItem.ORIENTATION: "Orientation", KeepItem.ICC: "ICC_Profile", KeepItem.COPYRIGHT: "Copyright"}


class StripUnsupported(MedialaneError):
    """The file's format, or something in it, cannot be cleaned without re-encoding."""

    status, code = 422, "strip_unsupported_format"


@dataclass(frozen=True)
class StripResult:
    data: bytes
    format: str
    removed: list[str]
    kept: list[str]

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class Report:
    """What a walker found, for StripResult's ``removed`` and ``kept``."""

    removed: set[str] = field(default_factory=set)
    kept: set[str] = field(default_factory=set)
    # JPEG: whether the Exif segment that decoders read orientation from has been seen.
    exif_chosen: bool = False

    def note(self, group: str, kept: bool) -> bool:
        """Record a group found as kept or removed; returns ``kept``."""
        (self.kept if kept else self.removed).add(group)
        return kept

    def result(self, data: bytes, media: MediaType) -> StripResult:
        return StripResult(data, media.extension, sorted(self.removed - self.kept), sorted(self.kept))
