"""GIF stripping by the block walker: ICC kept on request, comments, XMP and other application extensions gone,
loop control and every frame byte for byte."""

from __future__ import annotations

import io

import aiohttp
import pytest
from PIL import Image, ImageSequence

from adapters.exiftool import ExifTool
from media.strip import KEEP_DEFAULT, metadata_groups, strip_metadata
from media.strip.gif import strip_gif
from schemas.errors import CorruptMedia
from test_strip import SAMPLES, assert_nothing_left, exiftool, image_frames  # noqa: F401 - exiftool is a fixture

ICC = (SAMPLES / "exiftool-formats" / "ICC_Profile.icc").read_bytes()
XMP = b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'>" \
      b"<rdf:Description xmlns:dc='http://purl.org/dc/elements/1.1/'><dc:creator>me</dc:creator></rdf:Description>" \
      b"</rdf:RDF></x:xmpmeta>"  # fmt: skip


def sub_blocks(data: bytes) -> bytes:
    return b"".join(bytes([len(data[i : i + 255])]) + data[i : i + 255] for i in range(0, len(data), 255)) + b"\x00"


def application(identifier: bytes, body: bytes) -> bytes:
    return b"\x21\xff\x0b" + identifier + sub_blocks(body)


# XMP goes in raw, then a 257-byte "magic trailer" (01 FF FE ... 01 00) and the terminator, so a reader that
# skips sub-blocks lands on the terminator whatever the XMP's bytes are (XMP specification, part 3).
XMP_EXTENSION = b"\x21\xff\x0bXMP DataXMP" + XMP + bytes([1, *range(255, -1, -1)]) + b"\x00"
ICC_EXTENSION = application(b"ICCRGBG1012", ICC)
OTHER_EXTENSION = application(b"MGKIPTC0000", b"\x1c\x02\x50\x00\x02me")


def frames_gif(comment: bytes | None) -> bytes:
    """Three frames with their own palettes (local colour tables), looping, as Pillow writes them."""
    frames = [Image.new("RGB", (20, 12), colour).convert("P", palette=Image.Palette.ADAPTIVE)
              for colour in ((200, 10, 10), (10, 200, 10), (10, 10, 200))]  # fmt: skip
    for x in range(20):
        frames[1].putpixel((x, x % 12), 1)
    out = io.BytesIO()
    extra = {"comment": comment} if comment else {}
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=[40, 60, 80], loop=0, **extra)
    return out.getvalue()


def loop_position(gif: bytes) -> int:
    return gif.index(b"\x21\xff\x0bNETSCAPE2.0")


@pytest.fixture(scope="module")
def gifs() -> tuple[bytes, bytes]:
    """(the GIF with ICC, a comment, XMP and another application extension; the same GIF with none of them)."""
    plain = frames_gif(None)
    commented = frames_gif(b"where I live")
    comment_block = b"\x21\xfe" + sub_blocks(b"where I live")
    assert comment_block in commented and commented.replace(comment_block, b"") == plain
    at = loop_position(commented)
    full = commented[:at] + ICC_EXTENSION + XMP_EXTENSION + OTHER_EXTENSION + commented[at:]
    return full, plain


def image_blocks(gif: bytes) -> list[bytes]:
    """Each image's descriptor, local colour table and LZW data as stored: the raw image data blocks."""
    pos = 13 + (3 << ((gif[10] & 7) + 1) if gif[10] & 0x80 else 0)
    blocks = []
    while gif[pos] != 0x3B:
        start = pos
        if gif[pos] == 0x2C:
            pos += 10 + (3 << ((gif[pos + 9] & 7) + 1) if gif[pos + 9] & 0x80 else 0) + 1
        else:
            pos += 2
        while gif[pos]:
            pos += 1 + gif[pos]
        pos += 1
        if gif[start] == 0x2C:
            blocks.append(gif[start:pos])
    return blocks


def test_keeps_icc_loop_and_frames_and_drops_the_rest(gifs, exiftool: ExifTool) -> None:
    gif, plain = gifs
    assert {"Comment", "XMP", "ICC_Profile"} <= metadata_groups(exiftool.extract(gif, "gif"))
    result = strip_metadata(gif, KEEP_DEFAULT, exiftool)
    assert result.format == "gif"
    assert result.kept == ["ICC_Profile"]
    assert result.removed == ["Application", "Comment", "XMP"]
    at = loop_position(plain)
    # Byte for byte what Pillow wrote, with the ICC extension where it was: nothing else moved or changed.
    assert result.data == plain[:at] + ICC_EXTENSION + plain[at:]
    assert len(image_blocks(result.data)) == 3 and image_blocks(result.data) == image_blocks(gif)
    assert image_frames(result.data) == image_frames(gif)
    with Image.open(io.BytesIO(result.data)) as cleaned:
        assert cleaned.info["loop"] == 0
        assert [frame.info["duration"] for frame in ImageSequence.Iterator(cleaned)] == [40, 60, 80]
    tags = exiftool.extract(result.data, "gif")
    assert metadata_groups(tags) == {"ICC_Profile"}
    assert_nothing_left(tags, KEEP_DEFAULT)


def test_keep_nothing_drops_the_icc_too(gifs, exiftool: ExifTool) -> None:
    gif, plain = gifs
    result = strip_metadata(gif, frozenset(), exiftool)
    assert result.data == plain
    assert result.kept == [] and result.removed == ["Application", "Comment", "ICC_Profile", "XMP"]
    assert_nothing_left(exiftool.extract(result.data, "gif"), frozenset())


def test_bytes_after_the_trailer_go(gifs) -> None:
    # Straight to the walker: the upload check refuses a GIF that does not end with its trailer.
    _, plain = gifs
    result = strip_gif(plain + b"appended secret;", KEEP_DEFAULT)
    assert result.data == plain and result.removed == ["Trailer"]


@pytest.mark.parametrize("cut", [20, -1, -5])
def test_a_cut_gif_is_corrupt(gifs, cut: int) -> None:
    gif, _ = gifs
    with pytest.raises(CorruptMedia):
        strip_gif(gif[:cut], KEEP_DEFAULT)


async def test_through_the_api_the_default_keep_strips_a_gif_with_an_icc_profile(api, gifs) -> None:
    gif, plain = gifs
    form = aiohttp.FormData()
    form.add_field("file", gif, filename="animated.gif", content_type="image/gif")
    form.add_field("ops", "strip")
    async with api.post("/v1/jobs", data=form, params={"wait": "30"}) as response:
        job = await response.json()
        assert response.status == 200, job
    assert job["status"] == "completed", job
    strip = job["result"]["strip"]
    assert (strip["format"], strip["kept"], strip["removed"]) == ("gif", ["ICC_Profile"], ["Application", "Comment", "XMP"])
    async with api.get(strip["downloadUrl"]) as response:
        assert response.status == 200
        at = loop_position(plain)
        assert await response.read() == plain[:at] + ICC_EXTENSION + plain[at:]
