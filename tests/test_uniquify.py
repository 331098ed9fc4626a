"""Uniquification's pure parts: parameters, plan and layouts, copies, EXIF modes (checked with exiftool),
the manifest and the streamed zip."""

from __future__ import annotations

import hashlib
import io
import json
import math
import random
import re
import subprocess
import unicodedata
import zipfile
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image, ImageOps
from PIL.TiffImagePlugin import IFDRational

from processors.metadata import jpeg_quality
from processors.uniquify import (
    CAMERAS,
    LATEST_DATE,
    CopyTask,
    InvalidField,
    UniquifyParams,
    archive_stems,
    donor_exif,
    make_copy,
    manifest,
    parse_params,
    plan_copies,
    random_exif,
    uniquify_single,
    write_zip,
)
from schemas.errors import CorruptMedia, InvalidParameter, UnsupportedMedia

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"
JPEGS = SAMPLES / "exif-samples" / "jpg"
GPS_SOURCE = JPEGS / "gps" / "DSCN0012.jpg"
NO_GPS_SOURCE = JPEGS / "Nikon_D70.jpg"
ICC_SOURCE = JPEGS / "orientation" / "landscape_6.jpg"
DONOR = JPEGS / "Canon_40D.jpg"
MAX_COPIES = 100
# exiftool -validate -n: errors, warnings, minor warnings.
NO_WARNINGS = "0 0 0"
# Every transform off: what is left is decoding, orientation and re-encoding.
PLAIN = {name: "null" for name in ("rotate", "crop", "saturation", "brightness", "contrast")}


def params(**query: str) -> UniquifyParams:
    return parse_params(query, MAX_COPIES)


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


# --- parameters ---------------------------------------------------------------------------------


def test_defaults_are_the_references():
    job = params()
    assert (job.copies, job.names, job.folders, job.flip, job.exif, job.self_exif_id) == (10, 0, 0, 0, 0, 0)
    assert (job.rotate.enable, job.rotate.min, job.rotate.max) == (True, 0, 2)
    assert not job.crop.enable
    assert (job.saturation.enable, job.saturation.min, job.saturation.max) == (True, 90, 110)
    assert (job.brightness.enable, job.brightness.min, job.brightness.max) == (True, 90, 110)
    assert (job.contrast.enable, job.contrast.min, job.contrast.max) == (True, 1, 15)
    assert job.quality is None and job.seed is None


def test_every_parameter_parses():
    job = params(copies="100", names="2", folders="1", flip="3", exif="3", self_exif_id="7", quality="80",
                 seed=str(2**63 - 1), rotate='{"enable": true, "min": -45, "max": 45}',
                 crop='{"enable": true, "side": 3, "min": 0, "max": 40}',
                 saturation='{"min": 0, "max": 300}', brightness='{"enable": false}', contrast='{"max": 100}')
    assert (job.copies, job.names, job.folders, job.flip, job.exif) == (100, 2, 1, 3, 3)
    assert (job.self_exif_id, job.quality, job.seed) == (7, 80, 2**63 - 1)
    assert (job.rotate.min, job.rotate.max, job.crop.side, job.crop.max) == (-45, 45, 3, 40)
    assert (job.saturation.min, job.saturation.max) == (0, 300)
    assert not job.brightness.enable
    assert (job.contrast.enable, job.contrast.min, job.contrast.max) == (True, 1, 100)


def test_json_null_or_disabled_switches_a_transform_off_and_missing_keys_keep_defaults():
    assert not params(rotate="null").rotate.enable
    assert not params(saturation='{"enable": false}').saturation.enable
    crop = params(crop='{"enable": true}').crop
    assert (crop.enable, crop.side, crop.min, crop.max) == (True, 1, 1, 5)


def test_params_and_tasks_survive_a_json_round_trip():
    job = params(crop='{"enable": true, "side": 2}', exif="1", seed="5")
    assert UniquifyParams.model_validate_json(job.model_dump_json()) == job
    task = plan_copies(job, ["a.jpg"], 5)[0].retry()
    assert CopyTask.model_validate_json(task.model_dump_json()) == task


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"copies": "0"}, "copies"),
        ({"copies": "101"}, "copies"),
        ({"copies": "ten"}, "copies"),
        ({"copies": "1_0"}, "copies"),
        ({"copies": " 5"}, "copies"),
        ({"names": "3"}, "names"),
        ({"folders": "-1"}, "folders"),
        ({"flip": "4"}, "flip"),
        ({"exif": "4"}, "exif"),
        ({"exif": "3"}, "self_exif_id"),
        ({"exif": "3", "self_exif_id": "0"}, "self_exif_id"),
        ({"self_exif_id": "-1"}, "self_exif_id"),
        ({"quality": "0"}, "quality"),
        ({"quality": "101"}, "quality"),
        ({"seed": "-1"}, "seed"),
        ({"seed": str(2**63)}, "seed"),
        ({"seed": "9" * 5000}, "seed"),
        ({"rotate": "{enable: true}"}, "rotate"),
        ({"rotate": "[0, 2]"}, "rotate"),
        ({"rotate": '{"min": 5, "max": 2}'}, "rotate"),
        ({"rotate": '{"min": NaN}'}, "rotate"),
        ({"rotate": '{"min": -46}'}, "rotate.min"),
        ({"rotate": '{"max": "2"}'}, "rotate.max"),
        ({"rotate": '{"enable": "yes"}'}, "rotate.enable"),
        ({"rotate": '{"side": 1}'}, "rotate.side"),
        ({"crop": '{"enable": true, "side": 4}'}, "crop.side"),
        ({"crop": '{"enable": true, "side": true}'}, "crop.side"),
        ({"crop": '{"enable": true, "max": 41}'}, "crop.max"),
        ({"crop": '{"enable": true, "min": -1}'}, "crop.min"),
        ({"saturation": '{"max": 301}'}, "saturation.max"),
        ({"brightness": '{"min": -1}'}, "brightness.min"),
        ({"brightness": '{"min": 120}'}, "brightness"),
        ({"contrast": '{"max": 101}'}, "contrast.max"),
        ({"contrast": '{"min": true}'}, "contrast.min"),
        ({"contrast": '{"colour": 1}'}, "contrast.colour"),
        ({"copeis": "5"}, "copeis"),
    ],
)
def test_rejections_name_the_field(query, field):
    with pytest.raises(InvalidField) as caught:
        parse_params(query, MAX_COPIES)
    error = caught.value
    assert isinstance(error, InvalidParameter)
    assert (error.status, error.code, error.field) == (422, "invalid_parameter", field)
    assert error.message.startswith(f"{field}: ")


# --- plan and layout ----------------------------------------------------------------------------

HEX = r"[0-9a-f]{32}"
LAYOUTS = {
    (0, 0): [rf"{HEX}\.jpg"] * 4,
    (0, 1): [rf"(?P<a>{HEX})/{HEX}\.jpg"] * 2 + [rf"(?P<b>{HEX})/{HEX}\.jpg"] * 2,
    (0, 2): [rf"1/{HEX}\.jpg", rf"2/{HEX}\.jpg", rf"1/{HEX}\.jpg", rf"2/{HEX}\.jpg"],
    (1, 0): ["1.jpg", "2.jpg", "3.jpg", "4.jpg"],
    (1, 1): ["1/1.jpg", "1/2.jpg", "2/1.jpg", "2/2.jpg"],
    (1, 2): ["1/1.jpg", "2/1.jpg", "1/2.jpg", "2/2.jpg"],
    (2, 0): ["photo_1.jpg", "photo_2.jpg", "Photo-2_1.jpg", "Photo-2_2.jpg"],
    (2, 1): ["photo/photo_1.jpg", "photo/photo_2.jpg", "Photo-2/Photo-2_1.jpg", "Photo-2/Photo-2_2.jpg"],
    (2, 2): ["1/photo_1.jpg", "2/photo_2.jpg", "1/Photo-2_1.jpg", "2/Photo-2_2.jpg"],
}


@pytest.mark.parametrize(("names", "folders"), sorted(LAYOUTS))
def test_layouts(names, folders):
    job = params(copies="2", names=str(names), folders=str(folders))
    tasks = plan_copies(job, ["photo.jpg", "Photo.png"], 9)
    assert [(task.source_index, task.copy_index) for task in tasks] == [(0, 1), (0, 2), (1, 1), (1, 2)]
    for task, pattern in zip(tasks, LAYOUTS[names, folders], strict=True):
        assert re.fullmatch(pattern, task.path), (task.path, pattern)
    assert len({task.path for task in tasks}) == 4
    if (names, folders) == (0, 1):
        folders_of = [task.path.split("/")[0] for task in tasks]
        assert folders_of[0] == folders_of[1] != folders_of[2] == folders_of[3]


def test_plan_is_a_function_of_the_seed():
    job = params(copies="3")
    assert plan_copies(job, ["a.jpg", "b.jpg"], 1) == plan_copies(job, ["a.jpg", "b.jpg"], 1)
    first, other = plan_copies(job, ["a.jpg"], 1), plan_copies(job, ["a.jpg"], 2)
    assert {task.seed for task in first}.isdisjoint(task.seed for task in other)
    assert len({task.seed for task in plan_copies(job, ["a.jpg", "a.jpg"], 1)}) == 6


HOSTILE = [
    "../../etc/passwd",
    "/abs/x.jpg",
    "C:\\x.jpg",
    "..\\..\\windows\\win.ini",
    "a\x00b\nc\x1bd.jpg",
    "\u202egpj.exe",
    "line\u2028break\u00a0nbsp.jpg",
    "",
    ".",
    "..",
    "...",
    ".hidden.jpg",
    "x.jpg",
    "X.JPG",
    "x.png",
    "x-2.jpg",
    "a" * 1000 + ".jpg",
    "漢" * 300 + ".jpg",
    "CON.jpg",
    "lpt1",
    'a<b>:"c|?*.jpg',
    "trailing. . .jpg",
]


def assert_safe_paths(paths: list[str]) -> None:
    assert len({path.casefold() for path in paths}) == len(paths)
    for path in paths:
        assert not path.startswith("/") and "\\" not in path and ":" not in path
        for part in path.split("/"):
            assert part and part not in (".", "..") and not part.startswith(".")
            assert len(part.encode()) <= 255
            assert not any(unicodedata.category(ch).startswith("C") for ch in part)
            assert part.rstrip(". ") == part
            assert part.split(".")[0].upper() not in {"CON", "PRN", "AUX", "NUL", "LPT1", "COM1"}


def test_hostile_names_become_safe_distinct_stems():
    stems = archive_stems(HOSTILE)
    assert stems[:4] == ["passwd", "x", "x-2", "win"]
    assert stems[4] == "abcd"
    assert stems[5] == "gpj"
    assert stems[6] == "line break nbsp"
    assert stems[7:11] == ["image", "image-2", "image-3", "image-4"]
    assert stems[11:16] == ["hidden", "x-3", "X-4", "x-5", "x-2-2"]
    assert set(stems[16]) == {"a"} and 150 <= len(stems[16]) <= 200
    assert len(stems[17].encode()) <= 200 and set(stems[17]) == {"漢"}
    assert stems[18:22] == ["_CON", "_lpt1", "a_b___c___", "trailing"]


@pytest.mark.parametrize("folders", ["0", "1", "2"])
@pytest.mark.parametrize("names", ["0", "1", "2"])
def test_hostile_names_give_safe_archive_paths_in_every_layout(names, folders, tmp_path):
    tasks = plan_copies(params(copies="2", names=names, folders=folders), HOSTILE, 3)
    assert_safe_paths([task.path for task in tasks])
    archive = io.BytesIO()
    write_zip(((task.path, b"x") for task in tasks), archive)
    zipfile.ZipFile(archive).extractall(tmp_path / "out")
    extracted = [path for path in (tmp_path / "out").rglob("*") if path.is_file()]
    assert len(extracted) == len(tasks)
    assert all(path.resolve().is_relative_to((tmp_path / "out").resolve()) for path in extracted)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=300), max_size=6))
def test_any_names_give_safe_distinct_stems(names):
    stems = archive_stems(names)
    assert len(stems) == len(names)
    assert_safe_paths(stems)


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


# --- EXIF ---------------------------------------------------------------------------------------

EXIF_GROUPS = {"IFD0", "IFD1", "ExifIFD", "GPS", "InteropIFD", "MakerNotes"}


def has_group(tags: dict, group: str) -> bool:
    return any(key.startswith(f"{group}:") for key in tags)


def test_exif_removed(tmp_path):
    sources = [GPS_SOURCE, NO_GPS_SOURCE]
    copies = [copy_of(path.read_bytes(), {"exif": "0"}) for path in sources]
    [with_gps, with_xmp] = exif_of_copies(tmp_path, copies)
    for tags in (with_gps, with_xmp):
        groups = {key.split(":")[0] for key in tags}
        assert not groups & EXIF_GROUPS, groups
        assert not any(group.startswith(("XMP", "Nikon", "Photoshop")) for group in groups), groups
        assert "File:Comment" not in tags


def camera_and_lens(tags: dict):
    camera = next(c for c in CAMERAS if (c.make, c.model) == (tags["IFD0:Make"], tags["IFD0:Model"]))
    lens = next(lens for lens in camera.lenses if lens.model == tags["ExifIFD:LensModel"])
    return camera, lens


def test_exif_random_is_a_consistent_real_camera(tmp_path):
    job = params(exif="1", copies="10")
    results = [make_copy(GPS_SOURCE.read_bytes(), task, job, None) for task in plan_copies(job, ["a"], 21)]
    models = set()
    for result, tags in zip(results, exif_of_copies(tmp_path, results), strict=True):
        camera, lens = camera_and_lens(tags)
        models.add(camera.model)
        assert tags["IFD0:Software"] == camera.software and tags["ExifIFD:LensMake"] == lens.make
        assert lens.focal[0] <= tags["ExifIFD:FocalLength"] <= lens.focal[1]
        assert min(lens.aperture) <= tags["ExifIFD:FNumber"] <= lens.smallest
        assert camera.iso[0] <= tags["ExifIFD:ISO"] <= camera.iso[1]
        assert 1 / 4000 <= tags["ExifIFD:ExposureTime"] <= 1 / 14.9
        taken = tags["ExifIFD:DateTimeOriginal"]
        assert taken == tags["ExifIFD:CreateDate"] == tags["IFD0:ModifyDate"]
        assert camera.released <= datetime.strptime(taken, "%Y:%m:%d %H:%M:%S").date() <= LATEST_DATE
        assert tags["IFD0:Orientation"] == 1
        assert tags["ExifIFD:ExifImageWidth"] == result.width
        assert tags["ExifIFD:ExifImageHeight"] == result.height
        assert not has_group(tags, "GPS") and tags["ExifTool:Validate"] == NO_WARNINGS
    assert len(models) > 3


def test_random_exif_is_a_function_of_the_rng():
    assert random_exif(random.Random(3)) == random_exif(random.Random(3))
    assert random_exif(random.Random(3)) != random_exif(random.Random(4))


def distance_metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    north = (a[0] - b[0]) * 111_320
    east = (a[1] - b[1]) * 111_320 * math.cos(math.radians(a[0]))
    return math.hypot(north, east)


def test_exif_similar_keeps_the_camera_and_moves_gps_a_little(tmp_path):
    job = params(exif="2", copies="5")
    [source_tags] = exiftool(GPS_SOURCE)
    results = [make_copy(GPS_SOURCE.read_bytes(), task, job, None) for task in plan_copies(job, ["a"], 2)]
    origin = (source_tags["GPS:GPSLatitude"], source_tags["GPS:GPSLongitude"])
    source_taken = datetime.strptime(source_tags["ExifIFD:DateTimeOriginal"], "%Y:%m:%d %H:%M:%S")
    for tags in exif_of_copies(tmp_path, results):
        assert tags["IFD0:Make"] == source_tags["IFD0:Make"] and tags["IFD0:Model"] == source_tags["IFD0:Model"]
        position = (tags["Composite:GPSLatitude"], tags["Composite:GPSLongitude"])
        assert 4 < distance_metres(origin, position) < 31
        assert tags["GPS:GPSLatitudeRef"] == "N" and tags["GPS:GPSLongitudeRef"] == "E"
        shift = datetime.strptime(tags["ExifIFD:DateTimeOriginal"], "%Y:%m:%d %H:%M:%S") - source_taken
        assert 60 <= abs(shift.total_seconds()) <= 3600
        assert tags["IFD0:Orientation"] == 1 and not has_group(tags, "MakerNotes")
        assert tags["ExifTool:Validate"] == NO_WARNINGS


def test_exif_similar_without_source_gps_has_none(tmp_path):
    [source_tags] = exiftool(NO_GPS_SOURCE)
    [tags] = exif_of_copies(tmp_path, [copy_of(NO_GPS_SOURCE.read_bytes(), {"exif": "2"})])
    assert (tags["IFD0:Make"], tags["IFD0:Model"]) == (source_tags["IFD0:Make"], source_tags["IFD0:Model"])
    assert abs(tags["ExifIFD:ExposureTime"] / source_tags["ExifIFD:ExposureTime"] - 1) < 0.5
    assert not has_group(tags, "GPS")


def test_exif_similar_to_a_source_without_exif_is_a_random_camera(tmp_path):
    source = halves("red", "blue")
    [tags] = exif_of_copies(tmp_path, [copy_of(source, {"exif": "2"})])
    camera_and_lens(tags)
    assert not has_group(tags, "GPS")


def test_exif_from_a_donor(tmp_path):
    donor = donor_exif(DONOR.read_bytes())
    [donor_tags] = exiftool(DONOR)
    [tags] = exif_of_copies(tmp_path, [copy_of(GPS_SOURCE.read_bytes(), {"exif": "3", "self_exif_id": "1"},
                                               donor=donor)])
    for key in ("IFD0:Make", "IFD0:Model", "ExifIFD:DateTimeOriginal", "ExifIFD:ExposureTime",
                "ExifIFD:FNumber", "ExifIFD:ISO", "ExifIFD:FocalLength", "GPS:GPSVersionID"):
        assert tags[key] == donor_tags[key], key
    assert tags["IFD0:Orientation"] == 1
    assert not has_group(tags, "MakerNotes") and not has_group(tags, "IFD1")
    assert tags["ExifTool:Validate"] == NO_WARNINGS


def test_donor_tags_keep_their_standard_types(tmp_path):
    exif = Image.Exif()
    exif.update({ExifTags.Base.Make: "Canon", ExifTags.Base.Model: "Canon EOS 80D"})
    exif.get_ifd(ExifTags.IFD.Exif).update({
        ExifTags.Base.ExposureBiasValue: IFDRational(-2, 3),
        ExifTags.Base.UserComment: b"ASCII\x00\x00\x00hello",
        ExifTags.Base.SceneType: b"\x01",
    })
    donor = donor_exif(jpeg(Image.new("RGB", (8, 8)), exif=exif.tobytes()))
    copy = copy_of(halves("red", "blue"), {"exif": "3", "self_exif_id": "1"}, donor=donor)
    [tags] = exif_of_copies(tmp_path, [copy])
    assert tags["ExifIFD:ExposureCompensation"] == pytest.approx(-2 / 3, abs=1e-3)
    assert (tags["ExifIFD:UserComment"], tags["ExifIFD:SceneType"]) == ("hello", 1)
    assert tags["ExifTool:Validate"] == NO_WARNINGS


def test_donor_errors():
    with pytest.raises(InvalidParameter):
        donor_exif(halves("red", "blue"))
    with pytest.raises(UnsupportedMedia):
        donor_exif(b"not an image")
    with pytest.raises(InvalidField) as caught:
        copy_of(GPS_SOURCE.read_bytes(), {"exif": "3", "self_exif_id": "1"})
    assert caught.value.field == "self_exif_id"


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
