"""Content sniffing, and the structural checks of the routes that decode every upload at once (check_intact)."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from media.media_type import check_intact, check_media, sniff
from schemas.errors import CorruptMedia, EmptyFile, UnsupportedMedia

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"
FORMATS = SAMPLES / "exiftool-formats"
CANON_40D = SAMPLES / "exif-samples" / "jpg" / "Canon_40D.jpg"


@pytest.mark.parametrize(
    ("sample", "mime", "family"),
    [
        ("exif-samples/jpg/Canon_40D.jpg", "image/jpeg", "image"),
        ("exif-samples/tiff/BSG1.tiff", "image/tiff", "image"),
        ("exif-samples/heic/IMG_5195.HEIC", "image/heic", "image"),
        ("exif-samples/heic/mobile/HMD_Nokia_8.3_5G_hdr.heif", "image/heic", "image"),
        ("exiftool-formats/PNG.png", "image/png", "image"),
        ("exiftool-formats/RIFF.webp", "image/webp", "image"),
        ("exiftool-formats/CanonRaw.cr2", "image/x-canon-cr2", "image"),
        ("exiftool-formats/CanonRaw.crw", "image/x-canon-crw", "image"),
        ("exiftool-formats/Nikon.nef", "image/x-nikon-nef", "image"),
        ("exiftool-formats/FujiFilm.raf", "image/x-fujifilm-raf", "image"),
        ("exiftool-formats/Panasonic.rw2", "image/x-panasonic-rw2", "image"),
        ("exiftool-formats/Minolta.mrw", "image/x-minolta-mrw", "image"),
        ("exiftool-formats/Sigma.x3f", "image/x-sigma-x3f", "image"),
        ("exiftool-formats/QuickTime.mov", "video/quicktime", "video"),
        ("exiftool-formats/QuickTime.m4a", "audio/mp4", "audio"),
        ("exiftool-formats/Matroska.mkv", "video/x-matroska", "video"),
        ("exiftool-formats/Pentax.avi", "video/x-msvideo", "video"),
        ("exiftool-formats/AAC.aac", "audio/aac", "audio"),
        ("exiftool-formats/Vorbis.ogg", "audio/ogg", "audio"),
        ("exiftool-formats/Opus.opus", "audio/opus", "audio"),
        ("exiftool-formats/RIFF.wav", "audio/wav", "audio"),
        ("exiftool-formats/PDF.pdf", "application/pdf", "other"),
        ("exiftool-formats/OOXML.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "other"),
        # ZIPs that are not Office documents (Capture One's settings, an iWork package) are ZIP archives.
        ("exiftool-formats/CaptureOne.eip", "application/zip", "other"),
        ("exiftool-formats/iWork.numbers", "application/zip", "other"),
        ("exiftool-formats/Jpeg2000.jp2", "image/jp2", "image"),
        ("exiftool-formats/Jpeg2000.j2c", "image/x-jp2-codestream", "image"),
        ("exiftool-formats/BigTIFF.btf", "image/tiff", "image"),
        ("exiftool-formats/EXE.exe", "application/octet-stream", "other"),
        # 2 KB of 0xFF padding must not pass for an MPEG audio frame sync.
        ("exiftool-formats/PhotoCD.pcd", "application/octet-stream", "other"),
    ],
)
def test_sniff_sample(sample: str, mime: str, family: str) -> None:
    media = sniff((SAMPLES / sample).read_bytes())
    assert (media.mime, media.family) == (mime, family)


def _encoded(fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA" if fmt in ("PNG", "GIF", "WEBP") else "RGB", (32, 24), (200, 40, 10)).save(out, fmt, **options)
    return out.getvalue()


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("GIF", "image/gif"), ("WEBP", "image/webp"),
     ("BMP", "image/bmp"), ("TIFF", "image/tiff"), ("AVIF", "image/avif")],
)
def test_sniff_encoded_image(fmt: str, mime: str) -> None:
    assert check_intact(_encoded(fmt)).mime == mime


def test_sniff_ignores_the_name() -> None:
    # sniff takes bytes only; a PNG is a PNG whatever it is called.
    assert sniff(_encoded("PNG")).extension == "png"


def test_mp3_with_id3_tag() -> None:
    id3 = b"ID3\x04\x00\x00\x00\x00\x00\x0a" + b"\x00" * 10
    frame = b"\xff\xfb\x90\x64" + b"\x00" * 413
    assert sniff(id3 + frame).mime == "audio/mpeg"

def test_zip_archive_is_named_a_zip_archive() -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as package:
        package.writestr("[Content_Types].xml", "<Types/>")
        package.writestr("notes.txt", "hello")
    assert (sniff(archive.getvalue()).mime, sniff(archive.getvalue()).extension) == ("application/zip", "zip")


def test_a_broken_zip_is_still_a_zip_archive() -> None:
    assert sniff(b"PK\x03\x04" + bytes(60)).mime == "application/zip"


def test_windows_media_is_video() -> None:
    header = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
    assert (sniff(header + bytes(64)).mime, sniff(header + bytes(64)).family) == ("video/x-ms-wmv", "video")


@pytest.mark.parametrize("data", [b"just some notes\n", (FORMATS / "PDF.pdf").read_bytes(), _encoded("GIF")[:-1]])
def test_check_media_refuses_only_an_empty_file(data: bytes) -> None:
    # Which types an op takes is media/accepts's; a broken file is the op's to find.
    assert check_media(data) == sniff(data)


@given(st.binary(min_size=1, max_size=512))
def test_every_extension_is_one_exiftool_can_name_a_file_with(data: bytes) -> None:
    assert re.fullmatch(r"[a-z0-9]{1,8}", sniff(data).extension)


@pytest.mark.parametrize("check", [check_media, check_intact])
def test_empty_file_is_refused(check) -> None:
    with pytest.raises(EmptyFile) as err:
        check(b"")
    assert err.value.code == "empty_file"


def test_text_file_is_refused() -> None:
    with pytest.raises(UnsupportedMedia) as err:
        check_intact(b"just some notes\nnot a picture\n")
    assert err.value.code == "unsupported_media"
    assert "text/plain" in err.value.message


def test_pdf_is_refused_naming_its_type() -> None:
    with pytest.raises(UnsupportedMedia) as err:
        check_intact((FORMATS / "PDF.pdf").read_bytes())
    assert "application/pdf" in err.value.message


def test_jpeg_cut_in_half_is_corrupt() -> None:
    data = CANON_40D.read_bytes()
    with pytest.raises(CorruptMedia) as err:
        check_intact(data[: len(data) // 2])
    assert err.value.code == "corrupt_media"


def test_jpeg_cut_before_its_scan_is_corrupt() -> None:
    # The EXIF thumbnail's own EOI sits in this first part; it must not pass for the image's.
    data = CANON_40D.read_bytes()
    with pytest.raises(CorruptMedia):
        check_intact(data[:3000])


def test_jpeg_with_trailing_padding_is_accepted() -> None:
    data = CANON_40D.read_bytes()
    assert check_intact(data + b"\x00" * 4096 + b"\xff" * 16).mime == "image/jpeg"


def test_jpeg_with_trailer_after_eoi_is_accepted() -> None:
    assert check_intact((FORMATS / "FotoStation.jpg").read_bytes()).mime == "image/jpeg"


def test_png_without_iend_is_corrupt() -> None:
    data = _encoded("PNG")
    assert data.endswith(b"IEND\xaeB`\x82")
    with pytest.raises(CorruptMedia) as err:
        check_intact(data[:-12])
    assert err.value.code == "corrupt_media"


def test_truncated_mp4_box_is_corrupt() -> None:
    data = (FORMATS / "QuickTime.mov").read_bytes()
    with pytest.raises(CorruptMedia):
        check_intact(data[: len(data) - 100])


def test_truncated_riff_is_corrupt() -> None:
    data = (FORMATS / "RIFF.wav").read_bytes()
    with pytest.raises(CorruptMedia):
        check_intact(data[: len(data) // 2])


def test_gif_without_trailer_is_corrupt() -> None:
    with pytest.raises(CorruptMedia):
        check_intact(_encoded("GIF")[:-1])


@given(st.binary(max_size=512))
def test_arbitrary_bytes_give_a_type_or_a_typed_error(data: bytes) -> None:
    try:
        check_intact(data)
    except (EmptyFile, UnsupportedMedia, CorruptMedia):
        pass


@settings(max_examples=200)
@given(st.sampled_from(sorted(p for p in FORMATS.iterdir() if p.is_file())), st.floats(0, 1))
def test_any_prefix_of_a_sample_gives_a_type_or_a_typed_error(path: Path, fraction: float) -> None:
    data = path.read_bytes()
    try:
        check_intact(data[: int(len(data) * fraction)])
    except (EmptyFile, UnsupportedMedia, CorruptMedia):
        pass
