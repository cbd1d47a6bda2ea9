"""Fetching finished images and making them fit an upload limit. No Discord here."""

from __future__ import annotations

import base64
import binascii
import io
import logging
import math
import threading
import warnings
from dataclasses import dataclass

import aiohttp
from PIL import Image, UnidentifiedImageError

from bot.adapters.safe_fetch import FetchError, fetch_public
from bot.core.executors import IMAGES
from bot.core.image_file import ImageFile
from bot.core.texts import msg

log = logging.getLogger(__name__)

_TOO_LARGE = msg("the image is larger than the bot accepts")
_NOT_IMAGE = msg("the link did not lead to an image")
_UNREADABLE = msg("the image could not be read")
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


# What a fetch failure is called here; its text is safe to show, its `detail` goes to the log only.
DownloadError = FetchError

# No code path of this process decodes an image larger than this: Pillow warns above it and refuses
# (DecompressionBombError) at twice it, inside `Image.open`, before any pixel is decoded. The real
# limit (MAX_RESULT_MEGAPIXELS, at most this) is checked from the header before any decode.
PIXEL_CEILING = 100_000_000
Image.MAX_IMAGE_PIXELS = PIXEL_CEILING
# Decoding takes memory in proportion to the pixels (about 100 MB at 16 MP with the re-encoding):
# however many deliveries run, at most this many images are decoded at once in the process. The
# bot's own calls come through the image pool (`limit_pixels_in_pool`, `fit_to_limit_in_pool`), whose
# threads are as many as this, so they never wait here; this only bounds any other caller.
_DECODING = threading.BoundedSemaphore(IMAGES.size)


def sniff_type(data: bytes) -> str | None:
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def decode_data_uri(ref: str, max_bytes: int) -> ImageFile:
    payload = ref.split(",", 1)[1] if ref.startswith("data:") else ref
    if len(payload) * 3 // 4 > max_bytes:
        raise DownloadError(
            _TOO_LARGE, f"inline image of about {len(payload) * 3 // 4} bytes", permanent=True
        )
    try:
        data = base64.b64decode(payload, validate=False)
    except (binascii.Error, ValueError):
        raise DownloadError(
            msg("the image data was not valid"), "inline image is not base64", permanent=True
        ) from None
    kind = sniff_type(data)
    if kind is None:
        raise DownloadError(_NOT_IMAGE, "inline data is not a PNG, JPEG, WebP or GIF", permanent=True)
    return ImageFile(url=None, data=data, content_type=kind)


async def download_image(
    session: aiohttp.ClientSession, ref: str, *, max_bytes: int, timeout: float = 60.0
) -> ImageFile:
    """Fetch one result image from a public (or allowed) host, with a size cap and a content check."""
    if ref.startswith("data:"):
        return decode_data_uri(ref, max_bytes)
    fetched = await fetch_public(session, ref, max_bytes=max_bytes, timeout=timeout, too_large=_TOO_LARGE)
    kind = sniff_type(fetched.data)
    if kind is None:
        # The header alone is not trusted: an error page served as image/png must not be posted.
        raise DownloadError(_NOT_IMAGE, f"{fetched.content_type or 'untyped'} body that is not an image")
    return ImageFile(url=ref, data=fetched.data, content_type=kind)


def limit_pixels(image: ImageFile, max_pixels: int) -> ImageFile:
    """Check the image's size in pixels from its header, before anything is decoded.

    Within `max_pixels` it is returned as it is. A larger JPEG is decoded at 1/2, 1/4 or 1/8 scale
    (libjpeg's DCT scaling: the full-size image is never in memory) and re-encoded. Anything else
    larger has no cheap way down (PNG, WebP and GIF decode whole) and is refused with a reason the
    member can read. Light, but it may decode a reduced JPEG: call `limit_pixels_in_pool`.
    """
    if image.data is None:
        return image
    size: tuple[int, int] | None = None
    try:
        with warnings.catch_warnings():
            # The warning is Pillow's ceiling, not ours: the size is checked just below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(image.data)) as opened:
                size = opened.size
                if size[0] * size[1] <= max_pixels:
                    return image
                if opened.format == "JPEG":
                    with _DECODING:
                        reduced = _reduced_jpeg(opened, max_pixels)
                    if reduced is not None:
                        log.info("reduced a %sx%s JPEG to %sx%s", *size, *reduced.size)
                        return ImageFile(url=image.url, data=reduced.data, content_type="image/jpeg")
    except Image.DecompressionBombError:
        size = None  # declares more than PIXEL_CEILING * 2: not even its size is worth quoting
    except (UnidentifiedImageError, OSError) as exc:
        log.warning("a result image could not be read: %s", exc)
        return ImageFile(url=image.url, data=None, content_type=image.content_type, error=_UNREADABLE)
    megapixels = f"{max_pixels / 1_000_000:g}"
    if size is None:
        log.warning("refused a result image declaring an absurd size (a decompression bomb?)")
        error = msg(
            "it is far larger in pixels than the bot handles ({megapixels} megapixels at most)",
            megapixels=megapixels,
        )
    else:
        log.warning("refused a %sx%s result image (limit %s pixels)", *size, max_pixels)
        error = msg(
            "it is {width}×{height} pixels, more than the bot handles ({megapixels} megapixels at most)",
            width=size[0],
            height=size[1],
            megapixels=megapixels,
        )
    return ImageFile(url=image.url, data=None, content_type=image.content_type, error=error)


async def limit_pixels_in_pool(image: ImageFile, max_pixels: int) -> ImageFile:
    """`limit_pixels` on the image pool's threads (bot/core/executors.py), off the event loop."""
    return await IMAGES.run(limit_pixels, image, max_pixels)


@dataclass(frozen=True)
class _Reduced:
    data: bytes
    size: tuple[int, int]


def _reduced_jpeg(opened: Image.Image, max_pixels: int) -> _Reduced | None:
    width, height = opened.size
    for scale in (2, 4, 8):
        target = (math.ceil(width / scale), math.ceil(height / scale))
        if target[0] * target[1] > max_pixels:
            continue
        opened.draft("RGB", target)
        if opened.size[0] * opened.size[1] > max_pixels:
            return None  # the decoder would not scale this one down (e.g. progressive oddities)
        image = opened.convert("RGB")
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=90, optimize=True)
        return _Reduced(buffer.getvalue(), image.size)
    return None


@dataclass(frozen=True)
class FittedImage:
    data: bytes
    content_type: str
    reencoded: bool
    size: tuple[int, int] | None = None


def fit_to_limit(
    data: bytes, content_type: str, limit: int, max_pixels: int = PIXEL_CEILING
) -> FittedImage | None:
    """Return the image unchanged if it fits, else re-encoded (and if need be downscaled) to fit.

    CPU-bound: call `fit_to_limit_in_pool`. None means it cannot be made to fit.
    """
    if len(data) <= limit:
        return FittedImage(data, content_type, reencoded=False)
    with _DECODING:
        return _reencode_to_fit(data, limit, max_pixels)


async def fit_to_limit_in_pool(
    data: bytes, content_type: str, limit: int, max_pixels: int = PIXEL_CEILING
) -> FittedImage | None:
    """`fit_to_limit` on the image pool's threads; an image that already fits takes no thread."""
    if len(data) <= limit:
        return FittedImage(data, content_type, reencoded=False)
    return await IMAGES.run(fit_to_limit, data, content_type, limit, max_pixels)


def _reencode_to_fit(data: bytes, limit: int, max_pixels: int) -> FittedImage | None:
    try:
        opened = Image.open(io.BytesIO(data))
        if opened.size[0] * opened.size[1] > max_pixels:
            # Results were checked by `limit_pixels`; this guards every other caller.
            log.warning("not decoding a %sx%s image to re-encode it", *opened.size)
            return None
        opened.load()
        # An RGB image is used as it is: a converted copy would double the peak memory.
        image = opened if opened.mode == "RGB" else opened.convert("RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        log.warning("cannot re-encode an oversized image: %s", exc)
        return None
    width, height = image.size
    scale = 1.0
    while min(width * scale, height * scale) >= 64:
        candidate = (
            image
            if scale == 1.0
            else image.resize(
                (max(1, int(width * scale)), max(1, int(height * scale))), Image.Resampling.LANCZOS
            )
        )
        for quality in (90, 80, 70):
            buffer = io.BytesIO()
            # Baseline, default tables: progressive or optimized coding would make libjpeg keep every
            # coefficient of the image in memory (about 6 bytes a pixel) for a few percent of size.
            candidate.save(buffer, format="JPEG", quality=quality)
            if buffer.tell() <= limit:
                return FittedImage(buffer.getvalue(), "image/jpeg", reencoded=True, size=candidate.size)
        scale *= 0.75
    return None
