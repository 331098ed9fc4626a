"""Metadata stripping per format (PNG, WebP, GIF, MP4), broken input, the exiftool writer, fuzzing."""

from __future__ import annotations

import io
import struct
import time
import zlib
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin

from adapters.exiftool import ExifTool
from media.strip import KEEP_DEFAULT, metadata_groups, strip_jpeg, strip_metadata, strip_png
from schemas.errors import ExtractFailed, MedialaneError
from test_strip import SAMPLES, assert_nothing_left, exiftool, image_frames, media_data, png_idat, video_frames


# --- PNG, WebP, GIF, MP4 --------------------------------------------------------------------------


def png_with_metadata(orientation: int = 6) -> bytes:
    exif = Image.Exif()
    exif[0x0112], exif[0x010F], exif[0x8298] = orientation, "Camera", "(c) someone"
    exif.get_ifd(0x8825)[2] = (1.0, 2.0, 3.0)
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "a comment")
    info.add_text("Copyright", "(c) someone")
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta xmlns:x='adobe:ns:meta/'/>", zip=True)
    info.add_text("Author", "me", zip=True)
    out = io.BytesIO()
    im = Image.new("RGB", (24, 16))
    im.putdata([(x * 10, y * 15, 99) for y in range(16) for x in range(24)])
    icc = (SAMPLES / "exiftool-formats" / "ICC_Profile.icc").read_bytes()
    im.save(out, "PNG", pnginfo=info, exif=exif.tobytes(), icc_profile=icc)
    return insert_png_chunk(out.getvalue(), b"tIME", b"\x07\xe8\x01\x02\x03\x04\x05")


def insert_png_chunk(png: bytes, kind: bytes, body: bytes) -> bytes:
    chunk = struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return png[:33] + chunk + png[33:]


def test_png_keeps_rendering_chunks_icc_and_a_minimal_orientation(exiftool: ExifTool) -> None:
    png = png_with_metadata()
    result = strip_png(png, KEEP_DEFAULT)
    assert result.removed == ["Comment", "Copyright", "EXIF", "GPS", "ModifyDate", "Text", "XMP"]
    assert result.kept == ["ICC_Profile", "Orientation"]
    cleaned = Image.open(io.BytesIO(result.data))
    assert dict(cleaned.getexif()) == {0x0112: 6}
    assert cleaned.info["icc_profile"] == Image.open(io.BytesIO(png)).info["icc_profile"]
    assert png_idat(result.data) == png_idat(png)
    assert image_frames(result.data) == image_frames(png)
    assert_nothing_left(exiftool.extract(result.data, "png"), KEEP_DEFAULT)


def test_png_copyright_text_is_kept_when_asked(exiftool: ExifTool) -> None:
    result = strip_png(png_with_metadata(), frozenset({"copyright"}))
    assert result.kept == ["Copyright"]
    tags = exiftool.extract(result.data, "png")
    assert tags["PNG:Copyright"]["val"] == "(c) someone" and tags["EXIF:IFD0:Copyright"]["val"] == "(c) someone"
    assert_nothing_left(tags, frozenset({"copyright"}))


def test_apng_frames_stay() -> None:
    frames = [Image.new("RGBA", (8, 8), (i * 60, 0, 0, 255)) for i in range(3)]
    out = io.BytesIO()
    frames[0].save(out, "PNG", save_all=True, append_images=frames[1:], duration=100)
    png = insert_png_chunk(out.getvalue(), b"tEXt", b"Comment\x00hello")
    result = strip_png(png, KEEP_DEFAULT)
    assert result.data == out.getvalue() and result.removed == ["Comment"]


def test_png_refuses_an_unknown_critical_chunk_and_a_bad_crc() -> None:
    png = png_with_metadata()
    with pytest.raises(MedialaneError) as err:
        strip_png(insert_png_chunk(png, b"ZZZZ", b"?"), KEEP_DEFAULT)
    assert err.value.code == "strip_unsupported_format"
    idat = png.index(b"IDAT")
    with pytest.raises(MedialaneError) as err:
        strip_png(png[: idat + 6] + bytes([png[idat + 6] ^ 1]) + png[idat + 7 :], KEEP_DEFAULT)
    assert err.value.code == "corrupt_media"


def test_webp(exiftool: ExifTool) -> None:
    source = Image.open(SAMPLES / "exif-samples" / "jpg" / "orientation" / "landscape_6.jpg")
    out = io.BytesIO()
    source.save(out, "WEBP", exif=source.info["exif"], icc_profile=source.info["icc_profile"], xmp=b"<x/>")
    webp = out.getvalue()
    result = strip_metadata(webp, KEEP_DEFAULT, exiftool)
    assert result.kept == ["ICC_Profile", "Orientation"] and {"EXIF", "XMP"} <= set(result.removed)
    cleaned = Image.open(io.BytesIO(result.data))
    assert dict(cleaned.getexif()) == {0x0112: 6} and cleaned.info["icc_profile"] == source.info["icc_profile"]
    assert image_frames(result.data) == image_frames(webp)
    assert_nothing_left(exiftool.extract(result.data, "webp"), KEEP_DEFAULT)
    bare = strip_metadata(webp, frozenset(), exiftool)
    assert bare.kept == [] and image_frames(bare.data) == image_frames(webp)
    assert_nothing_left(exiftool.extract(bare.data, "webp"), frozenset())


def test_gif(exiftool: ExifTool) -> None:
    frames = [Image.new("P", (16, 16), i) for i in range(3)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=50)
    gif = exiftool.write(out.getvalue(), "gif", "-Comment=where I live", "-XMP:Creator=me", "-XMP:City=Paris")
    assert {"Comment", "XMP"} <= metadata_groups(exiftool.extract(gif, "gif"))
    result = strip_metadata(gif, KEEP_DEFAULT, exiftool)
    assert {"Comment", "XMP"} <= set(result.removed)
    assert image_frames(result.data) == image_frames(gif)
    assert_nothing_left(exiftool.extract(result.data, "gif"), KEEP_DEFAULT)


def test_mp4_loses_location_and_xmp(exiftool: ExifTool, tmp_path: Path) -> None:
    mp4 = tmp_path / "clip.mp4"
    with av.open(str(mp4), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), i * 40, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    tagged = exiftool.write(
        mp4.read_bytes(), "mp4", "-XMP:GPSLatitude=48.85", "-XMP:GPSLongitude=2.35", "-Keys:GPSCoordinates=48.85 2.35",
        "-UserData:GPSCoordinates=48.85 2.35", "-ItemList:Title=holiday", "-XMP:Creator=me",
    )  # fmt: skip
    assert {"GPS", "XMP"} <= metadata_groups(exiftool.extract(tagged, "mp4"))
    result = strip_metadata(tagged, KEEP_DEFAULT, exiftool)
    assert {"GPS", "XMP", "ItemList"} <= set(result.removed)
    assert media_data(result.data) == media_data(tagged)
    assert video_frames(result.data) == video_frames(tagged)
    assert_nothing_left(exiftool.extract(result.data, "mp4"), KEEP_DEFAULT)


# --- broken input, parameters, the exiftool writer ------------------------------------------------


@pytest.mark.parametrize("cut", [0.5, 0.999])
def test_truncated_jpeg_is_corrupt(cut: float, exiftool: ExifTool) -> None:
    data = (SAMPLES / "exif-samples" / "jpg" / "gps" / "DSCN0012.jpg").read_bytes()
    with pytest.raises(MedialaneError) as err:
        strip_metadata(data[: int(len(data) * cut)], KEEP_DEFAULT, exiftool)
    assert err.value.code == "corrupt_media"


@pytest.mark.parametrize(
    "data",
    [b"\xff\xd8\xff\xe1\x00", b"\xff\xd8\xff\xe1\xff\xff" + b"x" * 10, b"\xff\xd8\xff\xe1\x00\x01\xff\xd9"],
    ids=["header", "long-segment", "short-length"],
)
def test_broken_jpeg_segments_are_corrupt(data: bytes) -> None:
    with pytest.raises(MedialaneError) as err:
        strip_jpeg(data, KEEP_DEFAULT)
    assert err.value.code == "corrupt_media"


def test_truncated_png_is_corrupt(exiftool: ExifTool) -> None:
    png = png_with_metadata()
    for data in (png[:-12], png[: len(png) // 2]):
        with pytest.raises(MedialaneError) as err:
            strip_png(data, KEEP_DEFAULT)
        assert err.value.code == "corrupt_media"



def test_exiftool_write(exiftool: ExifTool) -> None:
    data = (SAMPLES / "exif-samples" / "jpg" / "Canon_40D.jpg").read_bytes()
    written = exiftool.write(data, "jpg", "-Artist=someone")
    assert exiftool.extract(written, "jpg")["EXIF:IFD0:Artist"]["val"] == "someone"
    assert list(Path(exiftool._tmpdir).iterdir()) == []


def test_exiftool_write_refuses_line_breaks_and_reports_unwritable_files(exiftool: ExifTool) -> None:
    data = (SAMPLES / "exif-samples" / "jpg" / "Canon_40D.jpg").read_bytes()
    with pytest.raises(ValueError):
        exiftool.write(data, "jpg", "-Artist=x\n-execute")
    with pytest.raises(ExtractFailed) as err:
        exiftool.write((SAMPLES / "exiftool-formats" / "RIFF.webp").read_bytes(), "webp", "-all=")
    assert err.value.code == "write_failed"
    assert list(Path(exiftool._tmpdir).iterdir()) == []
    assert exiftool.write(data, "jpg", "-all=").startswith(b"\xff\xd8")


def test_exiftool_write_times_out_and_cleans_up(tmp_path: Path) -> None:
    hangs_on_every_command = (
        "while read -r line; do\n"
        '  case "$line" in -execute*) sleep 60;; esac\n'
        "done\n"
    )
    script = tmp_path / "exiftool"
    script.write_text("#!/bin/sh\n" + hangs_on_every_command)
    script.chmod(0o755)
    with ExifTool(str(script), timeout=1.0) as tool:
        start = time.monotonic()
        with pytest.raises(ExtractFailed) as err:
            tool.write(b"\xff\xd8\xff\xd9", "jpg", "-all=")
        assert err.value.code == "extract_timeout" and time.monotonic() - start < 5
        assert list(Path(tool._tmpdir).iterdir()) == []


# --- fuzzing --------------------------------------------------------------------------------------


def small_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112], exif[0x8298] = 3, "(c)"
    out = io.BytesIO()
    Image.new("RGB", (16, 8), (1, 2, 3)).save(out, "JPEG", exif=exif.tobytes(), icc_profile=b"icc" * 10, comment=b"c")
    return out.getvalue()


mutations = st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=8)


def mutate(seed: bytes, changes: list[tuple[int, int]], cut: int) -> bytes:
    data = bytearray(seed[: max(cut, 2)])
    for position, value in changes:
        data[position % len(data)] = value
    return bytes(data)


@pytest.mark.parametrize("strip", [strip_jpeg, strip_png], ids=["jpeg", "png"])
def test_fuzzed_input_gives_a_result_or_a_typed_error(strip) -> None:
    seed = small_jpeg() if strip is strip_jpeg else png_with_metadata()

    @settings(max_examples=400, deadline=200, suppress_health_check=[HealthCheck.too_slow], database=None)
    @given(changes=mutations, cut=st.integers(0, len(seed)))
    def check(changes: list[tuple[int, int]], cut: int) -> None:
        for keep in (KEEP_DEFAULT, frozenset({"copyright"})):
            try:
                result = strip(mutate(seed, changes, cut), keep)
            except MedialaneError:
                continue
            assert isinstance(result.data, bytes) and len(result.data) <= cut + 64

    check()
