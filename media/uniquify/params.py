"""Uniquification parameters: parsed from a query string and bounded, as imgfactory's ``/async/unique`` and
``/sync/single/unique`` name them.

Parameters (query-string values; the JSON ones are objects whose missing keys take the defaults,
``null`` or ``"enable": false`` switches them off):

============  ==============================  ==========================  ===========================
parameter     meaning                         default                     accepted
============  ==============================  ==========================  ===========================
copies        copies of each source           10                          1..max_copies (settings)
names         0 hashed, 1 sequential,         0                           0..2
              2 original (``<stem>_<n>.jpg``)
folders       0 one folder, 1 a folder per    0                           0..2
              source, 2 a folder per copy
              number holding one copy of
              every source
rotate        degrees, counter-clockwise      {enable, min 0, max 2}      -45..45
crop          percent of the side's length    null (off); when enabled    side 0..3, percent 0..40
              cut from each chosen side;      side 1, min 1, max 5
              side 0 one random side, 1 two,
              2 all four, 3 a random set
saturation    percent of the original         {enable, min 90, max 110}   0..300
brightness    percent of the original         {enable, min 90, max 110}   0..300
contrast      percent added to the contrast   {enable, min 1, max 15}     0..100
flip          0 none, 1 horizontal,           0                           0..3
              2 vertical, 3 both
exif          0 removed, 1 random camera,     0                           0..3
              2 similar to the source's,
              3 a stored donor's
self_exif_id  the donor record for exif=3     0 (none)                    1..2**63-1, required by 3
quality       JPEG quality of the copies      the source's estimated      1..100
                                              quality (90 for non-JPEG)
seed          makes a job reproducible        drawn by the caller         0..2**63-1
============  ==============================  ==========================  ===========================

Bounds the reference leaves open: rotations beyond 45 degrees lose most of the picture to the
border-free crop; 40 percent per side keeps at least a fifth of the image when opposite sides are both
cut; 300 percent saturation or brightness is already a washed-out image; a contrast percentage is how
much more contrast (ImageEnhance factor 1 + p/100). Every random value is drawn uniformly from
[min, max] and rounded to two decimals, so the manifest records exactly what was applied.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from schemas.errors import InvalidParameter
from schemas.uniquify import CropSide, ExifMode, Range, UniquifyParams

MAX_SEED = 2**63 - 1
ROTATE_BOUNDS = (-45.0, 45.0)
CROP_BOUNDS = (0.0, 40.0)
COLOUR_BOUNDS = (0.0, 300.0)
CONTRAST_BOUNDS = (0.0, 100.0)
_INTEGER = re.compile(r"-?[0-9]{1,20}")
_INT_FIELDS = {
    "names": (0, 2),
    "folders": (0, 2),
    "flip": (0, 3),
    "exif": (0, 3),
    "self_exif_id": (0, MAX_SEED),
    "quality": (1, 100),
    "seed": (0, MAX_SEED),
}
_RANGE_BOUNDS = {
    "rotate": ROTATE_BOUNDS,
    "crop": CROP_BOUNDS,
    "saturation": COLOUR_BOUNDS,
    "brightness": COLOUR_BOUNDS,
    "contrast": CONTRAST_BOUNDS,
}


class InvalidField(InvalidParameter):
    """A rejected uniquification parameter; ``field`` names it (dotted inside JSON: ``crop.side``)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}", field=field)


def parse_params(query: Mapping[str, str], max_copies: int) -> UniquifyParams:
    """The parameters of a query string; raises InvalidField naming the first bad one."""
    unknown = sorted(set(query) - set(UniquifyParams.model_fields))
    if unknown:
        raise InvalidField(unknown[0], "unknown parameter")
    bounds = {"copies": (1, max_copies), **_INT_FIELDS}
    values: dict[str, Any] = {
        name: _parse_int(name, query[name], *limits) for name, limits in bounds.items() if name in query
    }
    defaults = UniquifyParams()
    for name, limits in _RANGE_BOUNDS.items():
        if name in query:
            values[name] = _parse_range(name, query[name], getattr(defaults, name), limits)
    if values.get("exif") == ExifMode.DONOR and not values.get("self_exif_id"):
        raise InvalidField("self_exif_id", "required when exif is 3 (a donor's EXIF)")
    return UniquifyParams(**values)


def _parse_int(field: str, raw: str, low: int, high: int) -> int:
    if not _INTEGER.fullmatch(raw):
        raise InvalidField(field, f"must be an integer, got {raw[:40]!r}")
    value = int(raw)
    if not low <= value <= high:
        raise InvalidField(field, f"must be between {low} and {high}, got {value}")
    return value


def _parse_range(field: str, raw: str, default: Range, limits: tuple[float, float]) -> Range:
    try:
        document = json.loads(raw, parse_constant=_reject_constant)
    except ValueError as exc:
        raise InvalidField(field, f"must be a JSON object: {exc}") from None
    if document is None:
        return default.model_copy(update={"enable": False})
    if not isinstance(document, dict):
        raise InvalidField(field, 'must be a JSON object like {"enable": true, "min": 1, "max": 2}')
    fields = default.model_dump()
    unknown = sorted(set(document) - set(fields))
    if unknown:
        raise InvalidField(f"{field}.{unknown[0]}", "unknown key")
    for key, value in document.items():
        fields[key] = _range_value(f"{field}.{key}", key, value, limits)
    if fields["min"] > fields["max"]:
        raise InvalidField(field, f"min ({fields['min']:g}) is greater than max ({fields['max']:g})")
    return type(default)(**fields)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number")


def _range_value(field: str, key: str, value: Any, limits: tuple[float, float]) -> Any:
    if key == "enable":
        if not isinstance(value, bool):
            raise InvalidField(field, "must be true or false")
        return value
    if key == "side":
        if type(value) is not int or value not in CropSide._value2member_map_:
            raise InvalidField(field, "must be 0 (one side), 1 (two), 2 (all) or 3 (random)")
        return value
    # bool is an int to Python, never a number to a client.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidField(field, f"must be a number, got {json.dumps(value)[:40]}")
    if not limits[0] <= value <= limits[1]:
        raise InvalidField(field, f"must be between {limits[0]:g} and {limits[1]:g}, got {value:g}")
    return float(value)
