"""Uniquification copies: determinism, distinctness, each transform, sources of every kind, the manifest
and the streamed zip."""

from __future__ import annotations

import hashlib
import io
import json
import math
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from media.metadata import jpeg_quality
from media.uniquify.archive import manifest, write_zip
from media.uniquify.copy import make_copy, uniquify_single
from media.uniquify.plan import plan_copies
from schemas.errors import CorruptMedia, UnsupportedMedia
from test_uniquify_params import params

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"
JPEGS = SAMPLES / "exif-samples" / "jpg"
GPS_SOURCE = JPEGS / "gps" / "DSCN0012.jpg"
NO_GPS_SOURCE = JPEGS / "Nikon_D70.jpg"
ICC_SOURCE = JPEGS / "orientation" / "landscape_6.jpg"
DONOR = JPEGS / "Canon_40D.jpg"
# exiftool -validate -n: errors, warnings, minor warnings.
NO_WARNINGS = "0 0 0"
# Every transform off: what is left is decoding, orientation and re-encoding.
PLAIN = {name: "null" for name in ("rotate", "crop", "saturation", "brightness", "contrast")}


def copy_of(source: bytes, query: dict[str, str], seed: int = 1, donor: bytes | None = None):
    job = params(**query)
    return make_copy(source, plan_copies(job, ["source.jpg"], seed)[0], job, donor)


def jpeg(image: Image.Image, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", **options)
    return out.getvalue()


def halves(first: str, second: str, vertical: bool = False) -> bytes:
    """A 64x48 JPEG whose left (or top) half is ``first`` and the other ``second``."""
    image = Image.new("RGB", (64, 48), first)
    image.paste(second, (0, 24, 64, 48) if vertical else (32, 0, 64, 48))
    return jpeg(image, quality=95)


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=float)


def exiftool(*paths: Path) -> list[dict]:
    output = subprocess.run(["/usr/bin/exiftool", "-j", "-G1", "-n", "-all", "-validate", *map(str, paths)],
                            capture_output=True, check=True, text=True).stdout
    return json.loads(output)


def exif_of_copies(tmp_path: Path, results) -> list[dict]:
    paths = []
    for index, result in enumerate(results):
        paths.append(tmp_path / f"{index}.jpg")
        paths[-1].write_bytes(result.data)
    return exiftool(*paths)


def has_group(tags: dict, group: str) -> bool:
    return any(key.startswith(f"{group}:") for key in tags)


# --- copies -------------------------------------------------------------------------------------


def test_same_seed_same_bytes_and_other_seeds_other_bytes():
    source = GPS_SOURCE.read_bytes()
    query = {"exif": "1", "crop": '{"enable": true, "side": 3}', "flip": "1"}
    first, again, other = copy_of(source, query, 11), copy_of(source, query, 11), copy_of(source, query, 12)
    assert first.data == again.data and first.transforms == again.transforms
    assert other.md5 != first.md5


def test_copies_differ_from_each_other_and_from_the_source():
    source = GPS_SOURCE.read_bytes()
    job = params(copies="6")
    results = [make_copy(source, task, job, None) for task in plan_copies(job, ["a.jpg"], 4)]
    md5s = {result.md5 for result in results}
    assert len(md5s) == 6 and hashlib.md5(source).hexdigest() not in md5s
    assert all(result.md5 == hashlib.md5(result.data).hexdigest() for result in results)


def test_retries_make_identical_copies_distinct():
    # Nothing random is enabled and the two sources are the same bytes: every first attempt collides.
    source = halves("red", "blue")
    job = params(copies="3", **PLAIN)
    seen = {hashlib.md5(source).hexdigest()}
    first_attempts, attempts = set(), []
    for task in plan_copies(job, ["a.jpg", "b.jpg"], 1):
        result = make_copy(source, task, job, None)
        first_attempts.add(result.md5)
        while result.md5 in seen:
            task = task.retry()
            result = make_copy(source, task, job, None)
        seen.add(result.md5)
        attempts.append(task.attempt)
    assert len(first_attempts) == 1
    assert len(seen) == 7 and len(set(attempts)) == 6
    assert np.abs(pixels(result.data) - pixels(source)).mean() < 3


def test_single_copy_is_never_the_source():
    image = Image.new("RGB", (32, 32), "red")
    source = jpeg(image, quality=75)
    job = params(quality="75", **PLAIN)
    assert make_copy(source, plan_copies(job, ["a"], 1)[0], job, None).data == source
    copy = uniquify_single(source, job, 1)
    assert copy != source and Image.open(io.BytesIO(copy)).size == (32, 32)


def test_orientation_is_applied_first():
    for path in sorted((JPEGS / "orientation").glob("*.jpg")):
        source = path.read_bytes()
        upright = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
        result = copy_of(source, {**PLAIN, "quality": "95"})
        assert (result.width, result.height) == upright.size, path.name
        assert np.abs(pixels(result.data) - np.asarray(upright, dtype=float)).mean() < 3, path.name
        assert result.phash_distance <= 2


def test_icc_profile_is_kept():
    source = ICC_SOURCE.read_bytes()
    for query in ({}, {"exif": "1"}):
        assert Image.open(io.BytesIO(copy_of(source, query).data)).info["icc_profile"] == \
            Image.open(ICC_SOURCE).info["icc_profile"]


def test_transparent_tiff_with_rgb_profile_becomes_an_rgb_jpeg():
    path = SAMPLES / "exif-samples" / "tiff" / "DudleyLeavittUtah.tiff"
    copy = Image.open(io.BytesIO(copy_of(path.read_bytes(), {}).data))
    assert (copy.format, copy.mode) == ("JPEG", "RGB")
    assert copy.info["icc_profile"] == Image.open(path).info["icc_profile"]


def test_heic_source(tmp_path):
    path = SAMPLES / "exif-samples" / "heic" / "IMG_5195.HEIC"
    result = copy_of(path.read_bytes(), {**PLAIN, "saturation": "{}", "exif": "2"})
    copy = Image.open(io.BytesIO(result.data))
    assert (copy.format, copy.size) == ("JPEG", Image.open(path).size)
    assert copy.info["icc_profile"] == Image.open(path).info["icc_profile"]
    [tags] = exif_of_copies(tmp_path, [result])
    assert (tags["IFD0:Make"], tags["IFD0:Model"]) == ("Apple", "iPhone 11 Pro Max")
    assert has_group(tags, "GPS")


def test_rotation_crops_away_the_corners():
    source = jpeg(Image.new("RGB", (400, 300), "white"), quality=95)
    result = copy_of(source, {**PLAIN, "rotate": '{"min": 10, "max": 10}'})
    assert result.transforms["rotate"] == 10
    scale = 1 / (math.cos(math.radians(10)) + math.sin(math.radians(10)) * 4 / 3)
    assert (result.width, result.height) == (math.floor(400 * scale), math.floor(300 * scale))
    assert pixels(result.data).min() > 240


@pytest.mark.parametrize(("side", "counts"), [("0", {1}), ("1", {2}), ("2", {4}), ("3", {1, 2, 3, 4})])
def test_crop_sides(side, counts):
    source = jpeg(Image.new("RGB", (200, 100), "gray"), quality=90)
    crop = f'{{"enable": true, "side": {side}, "min": 10, "max": 20}}'
    job = params(**{**PLAIN, "crop": crop}, copies="12")
    seen = set()
    for task in plan_copies(job, ["a"], 2):
        result = make_copy(source, task, job, None)
        cut = result.transforms["crop"]
        seen.add(len(cut))
        assert all(10 <= percent <= 20 for percent in cut.values())
        expected_width = 200 - sum(round(200 * cut.get(s, 0) / 100) for s in ("left", "right"))
        expected_height = 100 - sum(round(100 * cut.get(s, 0) / 100) for s in ("top", "bottom"))
        assert (result.width, result.height) == (expected_width, expected_height)
    assert seen == counts if side != "3" else seen <= counts and len(seen) > 1


def test_saturation_brightness_and_contrast():
    # A mid-grey ramp: no pixel clips at 140 percent contrast.
    ramp = Image.linear_gradient("L").resize((64, 64)).point(lambda value: 64 + value // 2)
    gradient = Image.merge("RGB", [ramp, ramp, Image.new("L", (64, 64), 100)])
    source = jpeg(gradient, quality=95)
    original = pixels(source)
    grey = pixels(copy_of(source, {**PLAIN, "saturation": '{"min": 0, "max": 0}'}).data)
    assert np.abs(grey[..., 0] - grey[..., 2]).max() < 6
    dark = pixels(copy_of(source, {**PLAIN, "brightness": '{"min": 50, "max": 50}'}).data)
    assert dark.mean() == pytest.approx(original.mean() / 2, rel=0.05)
    contrasty = copy_of(source, {**PLAIN, "contrast": '{"min": 40, "max": 40}'})
    assert contrasty.transforms["contrast"] == 40
    assert pixels(contrasty.data).std() == pytest.approx(original.std() * 1.4, rel=0.05)


@pytest.mark.parametrize(
    ("flip", "vertical", "swapped"),
    [("0", False, False), ("1", False, True), ("2", True, True), ("3", False, True), ("3", True, True)],
)
def test_flip(flip, vertical, swapped):
    result = copy_of(halves("red", "blue", vertical), {**PLAIN, "flip": flip})
    first_half = pixels(result.data)[:24, :32] if vertical else pixels(result.data)[:, :32]
    assert (first_half[..., 2].mean() > first_half[..., 0].mean()) == swapped
    assert ("flip" in result.transforms) == (flip != "0")


def test_quality_defaults_to_the_sources_and_can_be_set():
    source = GPS_SOURCE.read_bytes()
    source_quality = jpeg_quality(Image.open(GPS_SOURCE).quantization)
    assert jpeg_quality(Image.open(io.BytesIO(copy_of(source, {}).data)).quantization) == source_quality
    assert copy_of(source, {}).transforms["quality"] == source_quality
    assert jpeg_quality(Image.open(io.BytesIO(copy_of(source, {"quality": "40"}).data)).quantization) == 40


def test_transforms_record_the_values_applied():
    job = params(copies="5")
    for task in plan_copies(job, ["a"], 8):
        transforms = make_copy(GPS_SOURCE.read_bytes(), task, job, None).transforms
        assert set(transforms) == {"rotate", "saturation", "brightness", "contrast", "exif", "quality"}
        assert 0 <= transforms["rotate"] <= 2 and 1 <= transforms["contrast"] <= 15
        assert 90 <= transforms["saturation"] <= 110 and 90 <= transforms["brightness"] <= 110
        assert transforms["rotate"] == round(transforms["rotate"], 2)


def test_corrupt_and_unknown_sources_are_typed_errors():
    truncated = GPS_SOURCE.read_bytes()[:20000]
    with pytest.raises(CorruptMedia):
        copy_of(truncated, {})
    with pytest.raises(UnsupportedMedia):
        copy_of(b"definitely not an image", {})


# --- manifest and zip ---------------------------------------------------------------------------


def test_manifest_lists_every_copy():
    job = params(copies="2", names="2", folders="1")
    names = ["beach.jpg", "../city.jpg"]
    sources = [GPS_SOURCE.read_bytes(), NO_GPS_SOURCE.read_bytes()]
    tasks = plan_copies(job, names, 77)
    results = [make_copy(sources[task.source_index], task, job, None) for task in tasks]
    entries = [result.entry(task) for task, result in zip(tasks, results, strict=True)]
    # The fan-in collects entries in completion order; the manifest lists them in plan order.
    document = json.loads(json.dumps(manifest(job, 77, names, reversed(entries))))
    assert document["seed"] == 77 and document["params"]["copies"] == 2 and document["params"]["names"] == 2
    assert document["sources"] == [{"index": 0, "name": "beach.jpg"}, {"index": 1, "name": "../city.jpg"}]
    assert [entry["path"] for entry in document["copies"]] == [task.path for task in tasks]
    for entry, result in zip(document["copies"], results, strict=True):
        assert entry["md5"] == hashlib.md5(result.data).hexdigest() and entry["size"] == len(result.data)
        assert entry["transforms"] == result.transforms
        assert 0 <= entry["phash_distance"] <= 64


class Unseekable(io.RawIOBase):
    """A socket-like sink: write only, no seek, no tell."""

    def __init__(self) -> None:
        self.received = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.received += data
        return len(data)


def test_zip_streams_entries_one_by_one_to_an_unseekable_writer():
    sink = Unseekable()
    entries = [(f"{index}/copy.jpg", bytes([index]) * 50_000) for index in range(4)]
    written_before_each = []

    def produce():
        for entry in entries:
            written_before_each.append(len(sink.received))
            yield entry

    write_zip(produce(), sink)
    # Each entry reached the writer before the next one was produced.
    assert all(b - a >= 50_000 for a, b in zip(written_before_each, written_before_each[1:]))
    with zipfile.ZipFile(io.BytesIO(bytes(sink.received))) as archive:
        assert archive.testzip() is None
        assert [(info.filename, archive.read(info)) for info in archive.infolist()] == entries
    again = Unseekable()
    write_zip(iter(entries), again)
    assert again.received == sink.received
