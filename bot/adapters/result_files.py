"""Results for the runner (`ResultFetcher`): one download attempt at an image, its pixels limited, or at
a video, checked to be an MP4 by its bytes. Both through the same safe fetching and size cap; /history's
Post again fetches a posted video through `download_video` too."""

from __future__ import annotations

import aiohttp

from bot.adapters.media import DownloadError, download_image, limit_pixels_in_pool
from bot.adapters.safe_fetch import FetchError, fetch_public
from bot.adapters.video import MP4_TYPE, looks_like_mp4
from bot.core.image_file import ImageFile
from bot.core.runner.ports import FetchFailed
from bot.core.texts import Text, msg

_VIDEO_TOO_LARGE = msg("the video is larger than the bot accepts")
_NOT_VIDEO = msg("the link did not lead to a video")
# ISO files that start with an ftyp box but hold a still image (HEIF, AVIF), not a clip.
_IMAGE_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"})


def is_mp4_video(data: bytes) -> bool:
    """An MP4 (or QuickTime) file by its first box, and not an image in the same container."""
    return looks_like_mp4(data) and data[8:12] not in _IMAGE_BRANDS


async def download_video(
    session: aiohttp.ClientSession, ref: str, *, max_bytes: int, timeout: float = 60.0
) -> ImageFile:
    """Fetch one video from a public (or allowed) host, with a size cap, checked to be an MP4 by its
    bytes. Raises DownloadError."""
    if not ref.startswith(("https://", "http://")):
        raise DownloadError(_NOT_VIDEO, "a video that is not a web link", permanent=True)
    fetched = await fetch_public(
        session, ref, max_bytes=max_bytes, timeout=timeout, too_large=_VIDEO_TOO_LARGE
    )
    if not is_mp4_video(fetched.data):
        # The header alone is not trusted: an error page served as video/mp4 must not be posted.
        raise DownloadError(
            _NOT_VIDEO, f"{fetched.content_type or 'untyped'} body that is not an MP4 video", permanent=True
        )
    return ImageFile(url=ref, data=fetched.data, content_type=MP4_TYPE)


class HttpResultFetcher:
    def __init__(
        self, session: aiohttp.ClientSession, *, max_bytes: int, timeout: float, max_pixels: int
    ) -> None:
        self._session = session
        self._max_bytes, self._timeout, self._max_pixels = max_bytes, timeout, max_pixels

    async def fetch(self, ref: str) -> ImageFile:
        try:
            image = await download_image(self._session, ref, max_bytes=self._max_bytes, timeout=self._timeout)
        except DownloadError as error:
            raise _failed(error) from error
        return await limit_pixels_in_pool(image, self._max_pixels)

    async def fetch_video(self, ref: str) -> ImageFile:
        try:
            return await download_video(self._session, ref, max_bytes=self._max_bytes, timeout=self._timeout)
        except DownloadError as error:
            raise _failed(error) from error

    def unfetched(self, url: str | None, error: Text) -> ImageFile:
        return ImageFile(url=url, data=None, error=error)


def _failed(error: FetchError) -> FetchFailed:
    return FetchFailed(error.text, detail=error.detail, blocked=error.blocked, permanent=error.permanent)
