"""Uniquification's EXIF modes, checked with exiftool: removed, a random camera, similar to the source's,
a donor's."""

from __future__ import annotations

import math
import random
from datetime import datetime

import pytest
from PIL import ExifTags, Image
from PIL.TiffImagePlugin import IFDRational

from media.uniquify.cameras import CAMERAS, LATEST_DATE
from media.uniquify.copy import make_copy
from media.uniquify.exif import donor_exif, random_exif
from media.uniquify.params import InvalidField
from media.uniquify.plan import plan_copies
from schemas.errors import InvalidParameter, UnsupportedMedia
from test_uniquify_copies import (
    DONOR, GPS_SOURCE, NO_GPS_SOURCE, NO_WARNINGS, copy_of, exif_of_copies, exiftool, halves, has_group, jpeg,
)
from test_uniquify_params import params

EXIF_GROUPS = {"IFD0", "IFD1", "ExifIFD", "GPS", "InteropIFD", "MakerNotes"}


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
