import hashlib
import io
from pathlib import Path

import imagehash
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps

from media.phash import ALGORITHM, PHashResult, format_hash, hamming, parse_hash, phash_image
from schemas.errors import CorruptMedia, EmptyFile, InvalidParameter, MedialaneError, UnsupportedMedia

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"
ORIENTATION = SAMPLES / "exif-samples" / "jpg" / "orientation"
CAMERA_JPEG = SAMPLES / "exif-samples" / "jpg" / "Canon_40D.jpg"


def _stock_displayed(data: bytes) -> str:
    with Image.open(io.BytesIO(data)) as image:
        return str(imagehash.phash(ImageOps.exif_transpose(image)))


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def decodable_samples() -> list[tuple[Path, PHashResult]]:
    hashed = []
    for path in sorted(p for p in SAMPLES.rglob("*") if p.is_file()):
        try:
            hashed.append((path, phash_image(path.read_bytes())))
        except MedialaneError:
            continue
    return hashed


def test_identical_to_stock_imagehash_on_at_least_95_percent_of_samples(decodable_samples):
    distances = {
        path.name: hamming(result.hash, _stock_displayed(path.read_bytes())) for path, result in decodable_samples
    }
    identical = sum(distance == 0 for distance in distances.values())
    report = f"{identical}/{len(distances)} identical, largest distance {max(distances.values())}"
    print(report)
    assert len(distances) >= 100
    assert identical >= 0.95 * len(distances), report
    # Only JPEG draft decoding changes pixels, and only slightly.
    assert max(distances.values()) <= 4, report


@settings(max_examples=50, deadline=None)
@given(
    width=st.integers(1, 64),
    height=st.integers(1, 64),
    levels=st.integers(1, 256),
    seed=st.integers(0, 2**32 - 1),
)
def test_same_pixels_give_imagehash_hash(width, height, levels, seed):
    # Few grey levels make flat images and DCT coefficients that tie with the median.
    pixels = np.random.default_rng(seed).integers(0, levels, (height, width), dtype=np.uint8)
    png = _png(Image.fromarray(pixels))
    assert phash_image(png).hash == str(imagehash.phash(Image.open(io.BytesIO(png))))


def test_result_describes_the_bytes_and_the_algorithm():
    data = CAMERA_JPEG.read_bytes()
    result = phash_image(data)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.algorithm == ALGORITHM
    assert result.algorithm_version >= 1
    assert parse_hash(result.hash) >= 0
    assert parse_hash(result.mirrored_hash) >= 0
    with Image.open(CAMERA_JPEG) as image:
        assert (result.width, result.height) == image.size


@pytest.mark.parametrize("kind", ["landscape", "portrait"])
def test_exif_orientation_hashes_the_displayed_image(kind):
    # The same picture stored with different orientations: displayed, they are alike; stored, they differ.
    paths = sorted(ORIENTATION.glob(f"{kind}_*.jpg"))
    results = [phash_image(path.read_bytes()) for path in paths]
    stored = [str(imagehash.phash(Image.open(path))) for path in paths]
    assert len(paths) == 5
    assert all(hamming(results[0].hash, result.hash) <= 4 for result in results)
    assert all(hamming(stored[0], hash_) >= 16 for hash_ in stored[1:])
    assert all((result.width > result.height) == (kind == "landscape") for result in results)


def test_displayed_size_swaps_for_rotated_images():
    rotated = phash_image((ORIENTATION / "landscape_6.jpg").read_bytes())
    with Image.open(ORIENTATION / "landscape_6.jpg") as image:
        assert (rotated.width, rotated.height) == (image.height, image.width)


@pytest.mark.parametrize(
    "relative",
    [
        "exif-samples/jpg/Canon_40D.jpg",
        "exif-samples/jpg/orientation/portrait_6.jpg",
        "exif-samples/tiff/BSG1.tiff",
        "exif-samples/tiff/Arbitro.tiff",
        "exif-samples/jpg/gps/DSCN0012.jpg",
    ],
)
def test_mirrored_hash_is_the_hash_of_the_mirrored_image(relative):
    with Image.open(SAMPLES / relative) as image:
        displayed = ImageOps.exif_transpose(image).convert("RGB")
    original = phash_image(_png(displayed))
    mirrored = phash_image(_png(ImageOps.mirror(displayed)))
    assert original.mirrored_hash == mirrored.hash
    assert mirrored.mirrored_hash == original.hash
    assert original.hash != original.mirrored_hash


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [
        ("f06830ca9f1e3e90", "f06830ca9f1e3e90", 0),
        ("2d5ad3936d2e015b", "2d6ed293db36a4fb", 17),
        ("a4a65595ac94518b", "7838873e791f8400", 37),
    ],
)
def test_hamming_matches_imagekit_examples(a, b, distance):
    assert hamming(a, b) == distance
    assert hamming(b, a) == distance


@pytest.mark.parametrize(
    "bad",
    ["", "f06830ca9f1e3e9", "f06830ca9f1e3e900", "F06830CA9F1E3E90", "0xf06830ca9f1e3e", "g06830ca9f1e3e90",
     " f06830ca9f1e3e9", "f06830ca9f1e3e90\n", "-f06830ca9f1e3e9", 0xF06830CA9F1E3E90, None],
)
def test_bad_hex_is_an_invalid_parameter(bad):
    with pytest.raises(InvalidParameter, match="16 lowercase hex digits") as raised:
        parse_hash(bad)
    assert raised.value.code == "invalid_parameter"
    assert raised.value.status == 422


def test_hamming_rejects_bad_hex():
    with pytest.raises(InvalidParameter):
        hamming("f06830ca9f1e3e90", "nothex")


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_format_and_parse_round_trip(value):
    text = format_hash(value)
    assert len(text) == 16
    assert parse_hash(text) == value


def test_truncated_jpeg_is_corrupt_media():
    data = CAMERA_JPEG.read_bytes()
    with pytest.raises(CorruptMedia) as raised:
        phash_image(data[: len(data) // 2])
    assert raised.value.code == "corrupt_media"


def test_garbage_is_unsupported_media():
    with pytest.raises(UnsupportedMedia):
        phash_image(b"not an image at all" * 10)


def test_empty_bytes_are_an_empty_file():
    with pytest.raises(EmptyFile):
        phash_image(b"")
