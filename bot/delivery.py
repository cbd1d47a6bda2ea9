"""Fetching finished images and making them fit an upload limit. No Discord here."""

from __future__ import annotations

import base64
import binascii
import io
import logging
from dataclasses import dataclass

import aiohttp
from PIL import Image, UnidentifiedImageError

log = logging.getLogger(__name__)

ALLOWED_IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


class DownloadError(Exception):
    """The image could not be fetched; the text is safe to show."""


@dataclass(frozen=True)
class ImageFile:
    """A finished image in memory, or only its link when it could not be fetched."""

    url: str | None
    data: bytes | None
    content_type: str = "image/png"
    error: str | None = None

    @property
    def extension(self) -> str:
        return _EXTENSIONS.get(self.content_type, "png")


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
        raise DownloadError("the image is larger than the bot accepts")
    try:
        data = base64.b64decode(payload, validate=False)
    except (binascii.Error, ValueError):
        raise DownloadError("the image data was not valid base64") from None
    kind = sniff_type(data)
    if kind is None:
        raise DownloadError("the image data is not a PNG, JPEG, WebP or GIF")
    return ImageFile(url=None, data=data, content_type=kind)


async def download_image(
    session: aiohttp.ClientSession, ref: str, *, max_bytes: int, timeout: float = 60.0
) -> ImageFile:
    """Fetch one result image with a size cap and a content check."""
    if ref.startswith("data:"):
        return decode_data_uri(ref, max_bytes)
    try:
        async with session.get(ref, timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            if response.status != 200:
                raise DownloadError(f"the image host answered HTTP {response.status}")
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise DownloadError("the image is larger than the bot accepts")
            chunks: list[bytes] = []
            total = 0
            async for chunk in response.content.iter_chunked(64 * 1024):
                total += len(chunk)
                if total > max_bytes:
                    raise DownloadError("the image is larger than the bot accepts")
                chunks.append(chunk)
            header_type = response.content_type.lower()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise DownloadError(f"the image could not be downloaded ({type(exc).__name__})") from None
    data = b"".join(chunks)
    kind = sniff_type(data)
    if kind is None:
        # The header alone is not trusted: an error page served as image/png must not be posted.
        raise DownloadError(f"the result is not an image (it was {header_type or 'untyped'})")
    return ImageFile(url=ref, data=data, content_type=kind)


@dataclass(frozen=True)
class FittedImage:
    data: bytes
    content_type: str
    reencoded: bool
    size: tuple[int, int] | None = None


def fit_to_limit(data: bytes, content_type: str, limit: int) -> FittedImage | None:
    """Return the image unchanged if it fits, else re-encoded (and if need be downscaled) to fit.

    CPU-bound: call it through `asyncio.to_thread`. None means it cannot be made to fit.
    """
    if len(data) <= limit:
        return FittedImage(data, content_type, reencoded=False)
    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.load()
            image = opened.convert("RGB")
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
            candidate.save(buffer, format="JPEG", quality=quality, optimize=True, progressive=True)
            if buffer.tell() <= limit:
                return FittedImage(buffer.getvalue(), "image/jpeg", reencoded=True, size=candidate.size)
        scale *= 0.75
    return None
