"""What the media work needs of exiftool, so it stays pure: the adapter (adapters/exiftool.py) provides it,
and a caller hands it in."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol


class Exiftool(Protocol):
    def extract(self, data: bytes, extension: str) -> dict[str, Any]: ...

    def reading(self, data: bytes, extension: str) -> AbstractContextManager[Callable[[], dict[str, Any]]]: ...

    def write(self, data: bytes, extension: str, *args: str) -> bytes: ...
