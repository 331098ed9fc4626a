"""Media type sniffing from content, and the cheap structural checks every upload goes through.

The client's file name is never consulted: a name is a claim, the bytes are the evidence. Everything
here reads a few header bytes (and, for JPEG, walks segment headers), so it runs in microseconds and
can be called on every upload.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass

import puremagic

from media import tiff
from schemas.errors import CorruptMedia, EmptyFile, UnsupportedMedia

ACCEPTED_FAMILIES = frozenset({"image", "video", "audio"})


@dataclass(frozen=True)
class MediaType:
    mime: str
    extension: str
    family: str


def _media(mime: str, extension: str) -> MediaType:
    family = mime.split("/", 1)[0]
    return MediaType(mime, extension, family if family in ACCEPTED_FAMILIES else "other")


JPEG = _media("image/jpeg", "jpg")
PNG = _media("image/png", "png")
GIF = _media("image/gif", "gif")
WEBP = _media("image/webp", "webp")
BMP = _media("image/bmp", "bmp")
TIFF = _media("image/tiff", "tif")
BIGTIFF = _media("image/tiff", "btf")
HEIC = _media("image/heic", "heic")
HEIF = _media("image/heif", "heif")
AVIF = _media("image/avif", "avif")
CR2 = _media("image/x-canon-cr2", "cr2")
CR3 = _media("image/x-canon-cr3", "cr3")
CRW = _media("image/x-canon-crw", "crw")
NEF = _media("image/x-nikon-nef", "nef")
ARW = _media("image/x-sony-arw", "arw")
PEF = _media("image/x-pentax-pef", "pef")
DNG = _media("image/x-adobe-dng", "dng")
RAF = _media("image/x-fujifilm-raf", "raf")
RW2 = _media("image/x-panasonic-rw2", "rw2")
ORF = _media("image/x-olympus-orf", "orf")
MRW = _media("image/x-minolta-mrw", "mrw")
X3F = _media("image/x-sigma-x3f", "x3f")
MP4 = _media("video/mp4", "mp4")
MOV = _media("video/quicktime", "mov")
M4A = _media("audio/mp4", "m4a")
MKV = _media("video/x-matroska", "mkv")
WEBM = _media("video/webm", "webm")
AVI = _media("video/x-msvideo", "avi")
OGV = _media("video/ogg", "ogv")
WMV = _media("video/x-ms-wmv", "wmv")
MP3 = _media("audio/mpeg", "mp3")
AAC = _media("audio/aac", "aac")
FLAC = _media("audio/flac", "flac")
OGG = _media("audio/ogg", "ogg")
OPUS = _media("audio/opus", "opus")
WAV = _media("audio/wav", "wav")
AIFF = _media("audio/aiff", "aiff")
JP2 = _media("image/jp2", "jp2")
J2C = _media("image/x-jp2-codestream", "j2c")
ZIP = MediaType("application/zip", "zip", "other")
UNKNOWN = _media("application/octet-stream", "bin")

_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"}
_AVIF_BRANDS = {b"avif", b"avis"}
_HEIF_BRANDS = {b"mif1", b"msf1"}
_AUDIO_MP4_BRANDS = {b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "}
# QuickTime files predating ftyp start straight with one of these atoms.
_QUICKTIME_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}
_TIFF_MAKES = (("NIKON", NEF), ("SONY", ARW), ("PENTAX", PEF))
_TAG_MAKE, _TAG_DNG_VERSION = 0x010F, 0xC612
# Office Open XML packages by the folder of their main part; any other ZIP is named a ZIP archive.
_OOXML = (
    ("word/", MediaType("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx", "other")),
    ("xl/", MediaType("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx", "other")),
    ("ppt/", MediaType("application/vnd.openxmlformats-officedocument.presentationml.presentation", "pptx", "other")),
)
# exiftool takes the sniffed extension as its temp file's name: it must be a plain one.
_EXTENSION = re.compile(r"[a-z0-9]{1,8}")


def sniff(data: bytes) -> MediaType:
    """The media type of ``data`` from its magic bytes; family ``other`` for anything we do not process."""
    return _sniff_media(data) or _sniff_other(data)


def check_media(data: bytes) -> MediaType:
    """Sniff ``data``, refusing only an empty file: which types an op takes is the table of media/accepts."""
    if not data:
        raise EmptyFile("the file is empty")
    return sniff(data)


def check_intact(data: bytes) -> MediaType:
    """Sniff ``data`` and refuse what is not an intact image, video or audio file: empty, other types, truncated.

    For the routes that decode every upload at once (uniquification, similarity search)."""
    media = check_media(data)
    if media.family not in ACCEPTED_FAMILIES:
        raise UnsupportedMedia(
            f"unsupported media type {media.mime} (.{media.extension}): only images, video and audio are accepted"
        )
    problem = truncation(data, media)
    if problem:
        raise CorruptMedia(f"{media.mime} file is truncated or broken: {problem}")
    return media


def _sniff_media(data: bytes) -> MediaType | None:
    head = data[:16]
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    if head[4:8] == b"ftyp":
        return _iso_bmff(data)
    if head[4:8] in _QUICKTIME_ATOMS:
        return MOV
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff(data)
    if head[:4] in (b"II+\x00", b"MM\x00+"):
        # 64-bit offsets: Pillow and exiftool read it, but exiftool cannot rewrite it (strip refuses it).
        return BIGTIFF
    return _sniff_by_prefix(data) or _sniff_audio_frames(data)


def _sniff_by_prefix(data: bytes) -> MediaType | None:
    head = data[:64]
    if head[:4] == b"RIFF":
        return {b"WEBP": WEBP, b"WAVE": WAV, b"AVI ": AVI}.get(head[8:12])
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return AIFF
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return WEBM if b"webm" in head else MKV
    if head[:4] == b"OggS":
        return _ogg(head)
    if head[:4] == b"fLaC":
        return FLAC
    if head[:16] == _ASF_HEADER:
        return WMV
    if head[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n":
        return JP2
    if head[:4] == b"\xff\x4f\xff\x51":
        return J2C
    if head[:2] == b"BM" and head[6:10] == b"\x00\x00\x00\x00":
        return BMP
    for prefix, media in _RAW_PREFIXES:
        if head.startswith(prefix):
            return media
    return None


# The ASF header object's GUID: Windows Media video and audio.
_ASF_HEADER = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
_RAW_PREFIXES = (
    (b"FUJIFILMCCD-RAW", RAF),
    (b"IIU\x00", RW2),
    (b"IIRO", ORF),
    (b"IIRS", ORF),
    (b"MMOR", ORF),
    (b"II\x1a\x00\x00\x00HEAPCCDR", CRW),
    (b"\x00MRM", MRW),
    (b"FOVb", X3F),
)


def _iso_bmff(data: bytes) -> MediaType:
    major = data[8:12]
    box_size = int.from_bytes(data[:4], "big")
    compatible = {data[i : i + 4] for i in range(16, min(box_size, 64), 4)}
    if major == b"crx ":
        return CR3
    if major in _AVIF_BRANDS or (major in _HEIF_BRANDS and compatible & _AVIF_BRANDS):
        return AVIF
    if major in _HEIC_BRANDS or (major in _HEIF_BRANDS and compatible & _HEIC_BRANDS):
        return HEIC
    if major in _HEIF_BRANDS:
        return HEIF
    if major in _AUDIO_MP4_BRANDS:
        return M4A
    if major == b"qt  ":
        return MOV
    return MP4


def _ogg(head: bytes) -> MediaType:
    # The first page's first packet (at byte 28) names the codec.
    packet = head[28:40]
    if packet.startswith(b"OpusHead"):
        return OPUS
    if packet.startswith(b"\x80theora"):
        return OGV
    return OGG


def _tiff(data: bytes) -> MediaType:
    """TIFF, or one of the TIFF-based camera RAW formats told apart by IFD0 tags."""
    if data[8:11] == b"CR\x02":
        return CR2
    found = tiff.header(data)
    if found is None:
        return TIFF
    order, ifd0 = found
    entries = tiff.read_directory(data, order, ifd0).by_tag()
    if _TAG_DNG_VERSION in entries:
        return DNG
    make = _text(data, order, entries.get(_TAG_MAKE))
    for prefix, media in _TIFF_MAKES:
        if make.upper().startswith(prefix):
            return media
    return TIFF


def _text(data: bytes, order: str, entry: tiff.Entry | None) -> str:
    # What a cut file holds of the value still names the make.
    raw = tiff.value_bytes(data, order, entry) if entry else b""
    return raw.split(b"\x00", 1)[0].decode("latin-1")


def _sniff_audio_frames(data: bytes) -> MediaType | None:
    """MP3 and ADTS AAC: an optional ID3v2 tag, then a frame sync word."""
    start = _id3_size(data)
    frame = data[start : start + 3]
    if len(frame) < 3 or frame[0] != 0xFF:
        return None
    # Beyond the sync word, reject reserved field values so that runs of 0xFF padding never match.
    if frame[1] & 0xF6 == 0xF0 and (frame[2] >> 2) & 0x0F < 13:
        return AAC
    layer, bitrate, rate = (frame[1] >> 1) & 3, frame[2] >> 4, (frame[2] >> 2) & 3
    if frame[1] & 0xE0 == 0xE0 and layer and bitrate not in (0, 15) and rate != 3:
        return MP3
    return None


def _id3_size(data: bytes) -> int:
    if not data.startswith(b"ID3") or len(data) < 10:
        return 0
    size = 0
    for byte in data[6:10]:
        size = (size << 7) | (byte & 0x7F)
    return 10 + size


def _sniff_other(data: bytes) -> MediaType:
    """Name what is not an image, video or audio file, for exiftool's temp file and for messages."""
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return _zip(data)
    try:
        match = puremagic.magic_string(data[:8192])
    except (puremagic.PureError, ValueError):
        match = []
    if match and match[0].mime_type:
        extension = match[0].extension.lstrip(".").lower()
        return MediaType(match[0].mime_type, extension if _EXTENSION.fullmatch(extension) else "bin", "other")
    if _looks_like_text(data[:4096]):
        return MediaType("text/plain", "txt", "other")
    return UNKNOWN


def _zip(data: bytes) -> MediaType:
    # puremagic names every ZIP an Office document; only the names inside tell one from an archive.
    try:
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    except (zipfile.BadZipFile, ValueError, EOFError):
        return ZIP
    if "[Content_Types].xml" in names:
        for folder, media in _OOXML:
            if any(name.startswith(folder) for name in names):
                return media
    return ZIP


def _looks_like_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in head


def truncation(data: bytes, media: MediaType) -> str | None:
    """Why ``data`` is structurally incomplete, or None; only checks that cost no decoding."""
    if media is JPEG:
        return _jpeg_truncation(data)
    if media is PNG:
        return None if b"IEND" in data[-64:] else "no IEND chunk"
    if media is GIF:
        return None if data.rstrip(b"\x00").endswith(b";") else "no GIF trailer"
    if data[4:8] == b"ftyp" or media is MOV:
        return _box_truncation(data)
    if data[:4] == b"RIFF":
        return _riff_truncation(data)
    return None


def _jpeg_truncation(data: bytes) -> str | None:
    """Walk segment headers to the first scan, then require an EOI after it.

    Inside entropy-coded data 0xFF is always stuffed, so the first FF D9 after SOS is the image's own
    EOI; an EXIF thumbnail's EOI sits in APP1, before SOS, and cannot hide a truncation. Anything after
    EOI (padding, FotoStation or MPF trailers) is allowed.
    """
    scan = _jpeg_scan_start(data)
    if scan is None:
        return "ends before the first scan"
    return None if data.rfind(b"\xff\xd9", scan) >= 0 else "no end-of-image marker"


def _jpeg_scan_start(data: bytes) -> int | None:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            # A broken segment chain: fall back to searching for the SOS marker.
            found = data.find(b"\xff\xda", pos)
            return found if found >= 0 else None
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
        elif marker == 0xDA:
            return pos
        elif 0xD0 <= marker <= 0xD7 or marker == 0x01:
            pos += 2
        else:
            pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
    return None


def _box_truncation(data: bytes) -> str | None:
    """ISO BMFF / QuickTime: every top-level box must fit in the file."""
    pos = 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        if size == 1:
            size = int.from_bytes(data[pos + 8 : pos + 16], "big")
        elif size == 0:
            return None
        if size < 8:
            return f"invalid box size {size} at offset {pos}"
        pos += size
    return None if pos <= len(data) else f"last box ends {pos - len(data)} bytes past the end"


def _riff_truncation(data: bytes) -> str | None:
    declared = int.from_bytes(data[4:8], "little") + 8
    # Streaming writers leave the size at 0 or 0xFFFFFFFF; only a real size can prove truncation.
    if declared in (8, 0xFFFFFFFF + 8):
        return None
    return None if declared <= len(data) + 1 else f"RIFF declares {declared} bytes, file has {len(data)}"
