"""Result images for the runner (`ResultFetcher`): one download attempt, its pixels limited."""

from __future__ import annotations

import aiohttp

from bot.adapters.media import DownloadError, download_image, limit_pixels_in_pool
from bot.core.image_file import ImageFile
from bot.core.runner.ports import FetchFailed
from bot.core.texts import Text


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
            raise FetchFailed(
                error.text, detail=error.detail, blocked=error.blocked, permanent=error.permanent
            ) from error
        return await limit_pixels_in_pool(image, self._max_pixels)

    def unfetched(self, url: str | None, error: Text) -> ImageFile:
        return ImageFile(url=url, data=None, error=error)
