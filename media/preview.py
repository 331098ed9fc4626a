"""A job's preview: a small JPEG of the image as displayed, for the web page's rows and galleries."""

from __future__ import annotations

import io

from PIL import Image, ImageOps

from media.images import decoding, open_image

LONG_SIDE = 512
QUALITY = 80


def render_preview(data: bytes) -> bytes:
    """``data`` (any image Pillow opens; its first frame) as a JPEG at most ``LONG_SIDE`` px on its long
    side, the EXIF orientation applied, without metadata; transparency is flattened onto white."""
    image = open_image(data)
    with decoding(image):
        # The box is square, so shrinking before turning bounds the long side alike; shrinking first lets
        # JPEG decode at a reduced scale (draft), which keeps a 50-megapixel photo cheap.
        image.thumbnail((LONG_SIDE, LONG_SIDE))
        rgba = ImageOps.exif_transpose(image).convert("RGBA")
        flat = Image.new("RGB", rgba.size, "white")
        flat.paste(rgba, mask=rgba.getchannel("A"))
        out = io.BytesIO()
        flat.save(out, "JPEG", quality=QUALITY, optimize=True)
    return out.getvalue()
