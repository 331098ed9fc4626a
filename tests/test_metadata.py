"""The metadata stage on every sample, and field-level checks; the kept-open exiftool's failure paths are
in test_metadata_exiftool.py."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import struct
import time
import zlib
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from adapters.exiftool import ExifTool, KeptOpen
from media.media_type import sniff
from media.metadata import SECTION_NAMES, extract_metadata, jpeg_quality
from schemas.errors import MedialaneError, TooLarge, UnsupportedFormat
from schemas.settings import Settings

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"
EXIF_SAMPLES = SAMPLES / "exif-samples"
FORMATS = SAMPLES / "exiftool-formats"
ALL_SAMPLES = sorted(p for folder in (EXIF_SAMPLES, FORMATS) for p in folder.rglob("*") if p.is_file())
EXIFTOOL = shutil.which(Settings().exiftool_path) or Settings().exiftool_path
# ExifTool's own test files for these formats are header-only stubs that FFmpeg cannot demux.
TRUNCATED_STUBS = {"Pentax.avi", "Matroska.mkv", "Vorbis.ogg", "FLAC.ogg"}
SECONDS_PER_FILE = 20.0


@pytest.fixture(scope="module")
def exiftool() -> Iterator[ExifTool]:
    with ExifTool(EXIFTOOL, SECONDS_PER_FILE) as tool:
        yield tool


@pytest.fixture(scope="module")
def exiftool_tool() -> Iterator[KeptOpen]:
    """The exiftool command-line tool itself, kept open: the reference the documents are held to."""
    tool = KeptOpen([EXIFTOOL, "-stay_open", "True", "-@", "-"], SECONDS_PER_FILE)
    yield tool
    tool.close()


def exiftool_groups(tool: KeptOpen, data: bytes, extension: str, directory: Path) -> tuple[set[str], str | None]:
    """What ``exiftool -j -G1`` prints for ``data``: its family-1 groups (less System, which describes the
    file on disk) and its error, if any."""
    path = directory / f"file.{extension}"
    path.write_bytes(data)
    printed = json.loads(tool.execute("-j", "-G1", str(path)))[0]
    groups = {key.split(":")[0] for key in printed if ":" in key} - {"System"}
    return groups, printed.get("ExifTool:Error")


def document_groups(doc: dict) -> set[str]:
    return {group for section in SECTION_NAMES for group in doc[section]}


def extract(path: Path, exiftool: ExifTool) -> dict:
    return extract_metadata(path.read_bytes(), path.name, exiftool)


def tag(doc: dict, section: str, group: str, name: str) -> dict:
    return doc[section][group][name]


@pytest.mark.parametrize("path", ALL_SAMPLES, ids=lambda p: str(p.relative_to(SAMPLES)))
def test_every_sample_gives_a_document_or_a_typed_error(
    path: Path, exiftool: ExifTool, exiftool_tool: KeptOpen, tmp_path: Path
) -> None:
    """A file exiftool reads gives a document holding exiftool's groups, whatever the decoders make of it; a
    file it cannot read fails with its code unless a decoder reads it (raw ADTS AAC, which only PyAV knows)."""
    data = path.read_bytes()
    start = time.monotonic()
    try:
        doc = extract_metadata(data, path.name, exiftool)
    except MedialaneError as exc:
        outcome = exc.code
    else:
        outcome = "document"
        assert doc["file"] == {
            "name": path.name,
            "size": len(data),
            "mime": sniff(data).mime,
            "extension": sniff(data).extension,
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        # Thumbnails and previews stay exiftool's "(Binary data N bytes...)" placeholder.
        assert len(json.dumps(doc)) < 256 * 1024
    assert time.monotonic() - start < SECONDS_PER_FILE
    groups, error = exiftool_groups(exiftool_tool, data, sniff(data).extension, tmp_path)
    if error is None:
        assert outcome == "document"
        assert document_groups(doc) == groups
    elif outcome == "document":
        assert doc["av"] is not None or doc["image"] is not None
        assert doc["other"]["ExifTool"]["Error"]["text"] == error
    else:
        assert outcome == ("unsupported_format" if error == "Unknown file type" else "corrupt_media")
    if path.name in TRUNCATED_STUBS:
        # Their document says what is wrong with them: cut short (the structure), or not demuxable (PyAV).
        assert {warning["reader"] for warning in doc["warnings"]} & {"PyAV", "structure"}


def test_canon_40d(exiftool: ExifTool) -> None:
    doc = extract(EXIF_SAMPLES / "jpg" / "Canon_40D.jpg", exiftool)
    assert tag(doc, "exif", "IFD0", "Make") == {"value": "Canon", "text": "Canon"}
    assert tag(doc, "exif", "IFD0", "Model")["value"] == "Canon EOS 40D"
    assert tag(doc, "exif", "ExifIFD", "ExposureTime") == {"value": 0.00625, "text": "1/160"}
    assert tag(doc, "exif", "ExifIFD", "FNumber")["value"] == 7.1
    assert tag(doc, "exif", "ExifIFD", "ISO")["value"] == 100
    assert tag(doc, "exif", "ExifIFD", "ExposureProgram") == {"value": 1, "text": "Manual"}
    assert tag(doc, "composite", "Composite", "ShutterSpeed")["text"] == "1/160"
    assert tag(doc, "icc", "ICC_Profile", "ProfileDescription")["value"] == "sRGB IEC61966-2.1"
    assert tag(doc, "exif", "IFD1", "ThumbnailImage")["text"].startswith("(Binary data 1378 bytes")
    assert doc["image"] | {"quality": None} == {
        "format": "JPEG",
        "width": 100,
        "height": 68,
        "mode": "RGB",
        "bitDepth": 8,
        "hasTransparency": False,
        "hasColorProfile": True,
        "colorSpace": "RGB",
        "density": {"x": 72.0, "y": 72.0, "unit": "inch"},
        "quality": None,
        "orientation": 1,
        "progressive": False,
        "frameCount": 1,
        "animated": False,
    }
    assert doc["gps"] is None and doc["av"] is None
    assert "System" not in doc["other"]


def test_makernotes_have_their_own_section(exiftool: ExifTool) -> None:
    doc = extract(EXIF_SAMPLES / "jpg" / "Canon_PowerShot_S40.jpg", exiftool)
    assert tag(doc, "makernotes", "Canon", "CanonModelID")["text"] == "PowerShot S40"
    assert not any(group.startswith("Canon") for group in doc["exif"])


def test_xmp_and_iptc_sections(exiftool: ExifTool) -> None:
    doc = extract(EXIF_SAMPLES / "jpg" / "xmp" / "BlueSquare.jpg", exiftool)
    assert tag(doc, "xmp", "XMP-dc", "Title")["value"] == "Blue Square Test File - .jpg"
    assert tag(doc, "iptc", "IPTC", "ObjectName")["value"] == "Blue Square Test File - .jpg"


def test_gps_decimal_position(exiftool: ExifTool) -> None:
    gps = extract(EXIF_SAMPLES / "jpg" / "gps" / "DSCN0012.jpg", exiftool)["gps"]
    assert gps["latitude"] == pytest.approx(43.467157, abs=1e-6)
    assert gps["longitude"] == pytest.approx(11.885395, abs=1e-6)


def test_gps_is_signed_by_its_references(exiftool: ExifTool) -> None:
    west = extract(EXIF_SAMPLES / "jpg" / "hdr" / "iphone_hdr_NO.jpg", exiftool)["gps"]
    assert west["longitude"] == pytest.approx(-3.724753, abs=1e-6)
    assert west["altitude"] == pytest.approx(639.588, abs=1e-3)
    below_sea_level = extract(FORMATS / "GoPro.jpg", exiftool)["gps"]
    assert below_sea_level["altitude"] == pytest.approx(-3.983)


@pytest.mark.parametrize("path", sorted((EXIF_SAMPLES / "jpg" / "orientation").glob("*.jpg")), ids=lambda p: p.name)
def test_orientation(path: Path, exiftool: ExifTool) -> None:
    assert extract(path, exiftool)["image"]["orientation"] == int(path.stem.rsplit("_", 1)[1])


def test_heic(exiftool: ExifTool) -> None:
    doc = extract(EXIF_SAMPLES / "heic" / "mobile" / "iphone_13_pro_max.HEIC", exiftool)
    assert (doc["image"]["format"], doc["image"]["width"], doc["image"]["height"]) == ("HEIF", 3024, 4032)
    assert doc["image"]["orientation"] == 6
    assert tag(doc, "exif", "IFD0", "Make")["value"] == "Apple"


def test_camera_raw_takes_its_size_from_exiftool(exiftool: ExifTool) -> None:
    image = extract(FORMATS / "CanonRaw.cr2", exiftool)["image"]
    assert (image["format"], image["width"], image["height"]) == ("CR2", 3456, 2304)


def _jpeg(quality: int) -> bytes:
    out = io.BytesIO()
    Image.open(EXIF_SAMPLES / "jpg" / "Canon_40D.jpg").save(out, "JPEG", quality=quality)
    return out.getvalue()


@pytest.mark.parametrize("quality", [10, 50, 75, 90, 100])
def test_jpeg_quality_estimate(quality: int, exiftool: ExifTool) -> None:
    assert extract_metadata(_jpeg(quality), "q.jpg", exiftool)["image"]["quality"] == quality


def test_jpeg_quality_of_a_single_grayscale_table() -> None:
    out = io.BytesIO()
    Image.new("L", (16, 16), 128).save(out, "JPEG", quality=60)
    assert jpeg_quality(Image.open(out).quantization) == 60


def test_png_transparency(exiftool: ExifTool) -> None:
    out = io.BytesIO()
    Image.new("RGBA", (20, 10), (0, 0, 0, 0)).save(out, "PNG")
    image = extract_metadata(out.getvalue(), "t.png", exiftool)["image"]
    assert (image["format"], image["mode"], image["hasTransparency"], image["quality"]) == ("PNG", "RGBA", True, None)


def test_progressive_jpeg(exiftool: ExifTool) -> None:
    out = io.BytesIO()
    Image.new("RGB", (20, 10)).save(out, "JPEG", progressive=True)
    assert extract_metadata(out.getvalue(), "p.jpg", exiftool)["image"]["progressive"] is True


def test_animated_gif(exiftool: ExifTool) -> None:
    frames = [Image.new("RGB", (8, 8), color) for color in ("red", "green", "blue")]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100)
    image = extract_metadata(out.getvalue(), "a.gif", exiftool)["image"]
    assert (image["frameCount"], image["animated"]) == (3, True)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_claiming(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunks = _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"")) + _png_chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def test_decompression_bomb_is_refused(exiftool: ExifTool) -> None:
    with pytest.raises(TooLarge):
        extract_metadata(_png_claiming(100_000, 100_000), "bomb.png", exiftool)


def test_a_jpeg_pillow_cannot_read_keeps_exiftools_groups_and_a_warning(exiftool: ExifTool) -> None:
    # Structurally complete (SOI ... SOS ... EOI) but with no frame header Pillow could read; exiftool reads it.
    doc = extract_metadata(b"\xff\xd8\xff\xda\x00\x02\x00\xff\xd9", "bad.jpg", exiftool)
    assert tag(doc, "other", "File", "FileType")["value"] == "JPEG"
    assert [warning["reader"] for warning in doc["warnings"]] == ["Pillow"]
    assert doc["image"]["format"] == "JPEG" and doc["image"]["mode"] is None


def test_a_truncated_jpeg_gives_its_document_with_the_truncation_as_a_warning(exiftool: ExifTool) -> None:
    data = (EXIF_SAMPLES / "jpg" / "Canon_40D.jpg").read_bytes()
    doc = extract_metadata(data[:-1000], "cut.jpg", exiftool)
    assert tag(doc, "exif", "IFD0", "Model")["value"] == "Canon EOS 40D"
    assert doc["warnings"] == [
        {"reader": "structure", "message": "the image/jpeg file is truncated or broken: no end-of-image marker"}
    ]


def test_a_file_no_reader_knows_is_an_unsupported_format(exiftool: ExifTool) -> None:
    with pytest.raises(UnsupportedFormat) as err:
        extract_metadata(bytes(range(7, 256)) * 8, "blob.bin", exiftool)
    assert err.value.code == "unsupported_format"


def test_quicktime_av_fields(exiftool: ExifTool) -> None:
    media = extract(FORMATS / "QuickTime.mov", exiftool)["av"]
    assert media["container"] == "mov,mp4,m4a,3gp,3g2,mj2"
    video, audio = (next(s for s in media["streams"] if s["type"] == kind) for kind in ("video", "audio"))
    # The same values exiftool reads from the track headers (Track1 320x240 jpeg, Track2 1 channel 7875 Hz).
    assert (video["codec"], video["width"], video["height"], video["fps"]) == ("mjpeg", 320, 240, 30.0)
    assert video["codecLongName"] == "MJPEG (Motion JPEG)"
    assert (audio["codec"], audio["channels"], audio["sampleRate"]) == ("pcm_u8", 1, 7875)


def test_m4a_av_fields(exiftool: ExifTool) -> None:
    doc = extract(FORMATS / "QuickTime.m4a", exiftool)
    audio = next(s for s in doc["av"]["streams"] if s["type"] == "audio")
    assert doc["file"]["mime"] == "audio/mp4" and doc["image"] is None
    assert audio["codec"] == "aac"
    assert doc["av"]["duration"] == pytest.approx(10.33, abs=0.01)


def test_adts_aac_av_fields(exiftool: ExifTool) -> None:
    (audio,) = extract(FORMATS / "AAC.aac", exiftool)["av"]["streams"]
    assert (audio["codec"], audio["profile"], audio["channels"], audio["sampleRate"]) == ("aac", "LC", 2, 44100)


def test_opus_av_fields(exiftool: ExifTool) -> None:
    streams = extract(FORMATS / "Opus.opus", exiftool)["av"]["streams"]
    assert (streams[0]["codec"], streams[0]["sampleRate"]) == ("opus", 48000)


def _encode(container_format: str, video_codec: str | None, audio_codec: str) -> bytes:
    """A one-second clip, so the av fields can be checked on complete Matroska and Ogg files."""
    out = io.BytesIO()
    with av.open(out, "w", format=container_format) as container:
        video = container.add_stream(video_codec, rate=25) if video_codec else None
        if video:
            video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream(audio_codec, rate=48000, layout="stereo")
        for i in range(25 if video else 0):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 10, np.uint8), format="rgb24")
            container.mux(video.encode(frame))
        for i in range(50):
            samples = av.AudioFrame.from_ndarray(np.zeros((1, 960 * 2), np.int16), format="s16", layout="stereo")
            samples.sample_rate, samples.pts, samples.time_base = 48000, i * 960, Fraction(1, 48000)
            container.mux(audio.encode(samples))
        for stream in (video, audio):
            if stream:
                container.mux(stream.encode(None))
    return out.getvalue()


def test_matroska_av_fields(exiftool: ExifTool) -> None:
    doc = extract_metadata(_encode("matroska", "mpeg4", "flac"), "clip.mkv", exiftool)
    assert doc["file"]["mime"] == "video/x-matroska"
    assert doc["av"]["container"] == "matroska,webm"
    assert doc["av"]["duration"] == pytest.approx(1.0, abs=0.1)
    video, audio = doc["av"]["streams"]
    assert (video["codec"], video["width"], video["height"], video["fps"], video["pixelFormat"]) == (
        "mpeg4", 64, 48, 25.0, "yuv420p"
    )
    assert (audio["codec"], audio["channels"], audio["sampleRate"]) == ("flac", 2, 48000)


def test_ogg_av_fields(exiftool: ExifTool) -> None:
    doc = extract_metadata(_encode("ogg", None, "flac"), "clip.ogg", exiftool)
    assert (doc["file"]["mime"], doc["av"]["container"]) == ("audio/ogg", "ogg")
    (audio,) = doc["av"]["streams"]
    assert (audio["type"], audio["codec"], audio["channels"], audio["sampleRate"]) == ("audio", "flac", 2, 48000)
