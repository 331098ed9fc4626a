"""Uniquification parameters and plans: parsing and bounds, layouts of the archive, safe names."""

from __future__ import annotations

import io
import re
import unicodedata
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media.uniquify.archive import write_zip
from media.uniquify.params import InvalidField, parse_params
from media.uniquify.plan import archive_stems, plan_copies
from schemas.errors import InvalidParameter
from schemas.uniquify import CopyTask, UniquifyParams

MAX_COPIES = 100


def params(**query: str) -> UniquifyParams:
    return parse_params(query, MAX_COPIES)


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
