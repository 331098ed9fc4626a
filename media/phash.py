"""DCT perceptual hash of an image as displayed, bit-compatible with ``imagehash.phash`` (hash_size 8).

For the same decoded pixels the hash equals imagehash's. The pixels differ from a full decode only for
JPEGs, which libjpeg decodes at a reduced scale (Pillow's draft mode): that skips most of the IDCT and
colour conversion work, and a downscale to 32x32 follows anyway. One decode yields both the hash and
the hash of the horizontally mirrored image, which the similarity index needs for mirror queries.
"""

import hashlib
import re
from dataclasses import dataclass

import numpy as np
import scipy.fftpack
from PIL import ExifTags, Image, ImageOps

from media.images import decoding, open_image
from media.media_type import check_media
from schemas.errors import CorruptMedia, EmptyFile, InvalidParameter, UnsupportedMedia

# A stored hash is only comparable with hashes of the same algorithm and version: bump the version
# whenever a change can alter any hash (decode scale, resampling, bit order).
ALGORITHM = "dct-phash-8/imagehash-4.3"
ALGORITHM_VERSION = 1

_HASH_SIDE = 8
# imagehash's hash_size * highfreq_factor.
_REDUCED_SIDE = 32
# JPEGs decode at the smallest DCT scale (1/2, 1/4 or 1/8) that keeps at least this many pixels per
# side: 8x oversampling of the 32x32 reduction keeps the hash identical to a full decode on 97% of the
# samples (bench/phash.py), at a fraction of the cost.
_DRAFT_SIDE = 256
_HEX_HASH = re.compile(r"[0-9a-f]{16}")
_TRANSPOSING_ORIENTATIONS = frozenset({5, 6, 7, 8})
# What Pillow decodes to pixels, by sniffed type; camera RAW is not among them (Pillow would read, at
# best, the small preview of a TIFF-based RAW, not the photo).
TYPES = frozenset({
    "image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", "image/tiff", "image/heic", "image/heif",
    "image/avif", "image/jp2", "image/x-jp2-codestream", "image/x-icon", "image/vnd.adobe.photoshop",
    "image/x-pcx",
})  # fmt: skip


class PHashUnsupported(UnsupportedMedia):
    """The file is of a type phash does not decode (audio, video, documents, camera RAW)."""

    code = "phash_unsupported_format"


@dataclass(frozen=True)
class PHashResult:
    hash: str
    mirrored_hash: str
    algorithm: str
    algorithm_version: int
    # As displayed, at full resolution.
    width: int
    height: int
    # The pixels actually hashed (reduced for JPEGs), as displayed.
    decoded_width: int
    decoded_height: int
    # The exact-duplicate key.
    sha256: str


def phash_image(data: bytes) -> PHashResult:
    """Hash and mirrored hash of an encoded image, EXIF orientation applied."""
    if not data:
        raise EmptyFile("the image is empty")
    media = check_media(data)
    if media.mime not in TYPES:
        accepted = ", ".join(sorted(TYPES))
        raise PHashUnsupported(f"phash cannot hash {media.mime} (.{media.extension}) files; it takes {accepted}")
    displayed, (width, height) = _decode_displayed(_open(data, media.mime))
    pixels = np.asarray(displayed.resize((_REDUCED_SIDE, _REDUCED_SIDE), Image.Resampling.LANCZOS))
    return PHashResult(
        hash=format_hash(_dct_hash(pixels)),
        # Mirroring commutes with the symmetric Lanczos reduction, so flipping the 32x32 pixels gives
        # the hash of the mirrored image without another decode.
        mirrored_hash=format_hash(_dct_hash(pixels[:, ::-1])),
        algorithm=ALGORITHM,
        algorithm_version=ALGORITHM_VERSION,
        width=width,
        height=height,
        decoded_width=displayed.width,
        decoded_height=displayed.height,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def parse_hash(value: str) -> int:
    """The 64-bit integer of a hash written as 16 lowercase hex digits."""
    if not isinstance(value, str) or not _HEX_HASH.fullmatch(value):
        raise InvalidParameter(f"a pHash is 16 lowercase hex digits (e.g. f06830ca9f1e3e90), got {value!r}")
    return int(value, 16)


def format_hash(value: int) -> str:
    return f"{value:016x}"


def hamming(a: str, b: str) -> int:
    """Number of differing bits between two hex hashes."""
    return (parse_hash(a) ^ parse_hash(b)).bit_count()


def _open(data: bytes, mime: str) -> Image.Image:
    try:
        return open_image(data)
    except UnsupportedMedia as exc:
        # The bytes were sniffed as a type Pillow decodes: when Pillow does not recognise them, they are broken.
        raise CorruptMedia(f"the {mime} image cannot be read: {exc.__cause__}") from exc


def _displayed_size(image: Image.Image) -> tuple[int, int]:
    orientation = image.getexif().get(ExifTags.Base.Orientation)
    if orientation in _TRANSPOSING_ORIENTATIONS:
        return image.height, image.width
    return image.width, image.height


def _decode_displayed(image: Image.Image) -> tuple[Image.Image, tuple[int, int]]:
    """Grayscale pixels as displayed (imagehash's conversion, after orientation), and the full size."""
    with decoding(image):
        size = _displayed_size(image)
        image.draft(None, (_DRAFT_SIDE, _DRAFT_SIDE))
        return ImageOps.exif_transpose(image).convert("L"), size


def _dct_hash(pixels: np.ndarray) -> int:
    # scipy.fftpack as imagehash uses it: a different DCT could move coefficients that tie with the
    # median (flat images) to the other side of it.
    dct = scipy.fftpack.dct(scipy.fftpack.dct(pixels, axis=0), axis=1)
    low = dct[:_HASH_SIDE, :_HASH_SIDE]
    bits = (low > np.median(low)).ravel()
    # Row-major, first coefficient as the most significant bit, as imagehash's hex string.
    return int.from_bytes(np.packbits(bits).tobytes(), "big")
