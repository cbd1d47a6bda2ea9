"""An image's bytes for the gallery: its thumbnail from the thumbnail store (made on first show for
images posted before the store existed), and the full image fetched on the server side.

The full image comes from its Discord message: the attachment links kept in the thumbnail store are
refreshed through Discord (POST /attachments/refresh-urls, with the bot's token) and fetched here,
or, the first time, read from the message itself (which signs them afresh). The bytes are passed on
to the browser rather than redirecting it to the refreshed link: the page's Content-Security-Policy
keeps images to this site, the expiring signed link never reaches the page, and the browser's cache
keys the image to the gallery's address, which does not change when the link does. When Discord
cannot give it (an image delivered ephemerally has no message), the image service's link is tried."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import aiohttp

from bot.adapters.store import GalleryImage
from bot.adapters.thumbnails import CONTENT_TYPE, ThumbnailStore
from bot.web.discord_rest import DiscordRest, DiscordUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Picture:
    body: bytes
    content_type: str


def _acceptable(kind: str, image: GalleryImage) -> bool:
    return kind.startswith("video/" if image.is_video else "image/")


class Pictures:
    def __init__(
        self,
        thumbnails: ThumbnailStore,
        discord: DiscordRest | None,
        media: aiohttp.ClientSession,
        max_bytes: int,
    ) -> None:
        self.thumbnails = thumbnails
        self.discord = discord
        self.media = media
        self.max_bytes = max_bytes

    async def full(self, image: GalleryImage, index: int) -> Picture | None:
        found = await self._from_discord(image, index)
        return found if found is not None else await self._from_service(image, index)

    async def thumbnail(self, image: GalleryImage, index: int) -> Picture | None:
        """The kept thumbnail, else one made now from the full image (then kept). Videos have none
        of their own: their poster is the thumbnail of the image they were made from."""
        if image.is_video:
            return None
        kept = self.thumbnails.read(image.id, index)
        if kept is not None:
            return Picture(kept, CONTENT_TYPE)
        full = await self.full(image, index)
        if full is None:
            return None
        made = await self.thumbnails.make(image.id, index, full.body)
        return Picture(made, CONTENT_TYPE) if made is not None else None

    async def _from_discord(self, image: GalleryImage, index: int) -> Picture | None:
        discord = self.discord
        if discord is None or image.message_id is None or image.message_channel_id is None:
            return None
        try:
            kept = self.thumbnails.links(image.id)
            if kept and index < len(kept):
                fresh = await discord.refresh([kept[index]])
                if kept[index] in fresh:
                    got = await discord.download(fresh[kept[index]])
                    if got is not None and _acceptable(got[1], image):
                        return Picture(*got)
            attachments = await discord.attachments(image.message_channel_id, image.message_id)
            if not attachments:
                return None
            self.thumbnails.keep_links(image.id, [a.url for a in attachments])
            if index >= len(attachments):
                return None
            got = await discord.download(attachments[index].url)
        except DiscordUnavailable as error:
            log.info("gallery image %s: Discord could not give it (%s)", image.id, error)
            return None
        if got is None or not _acceptable(got[1], image):
            return None
        return Picture(*got)

    async def _from_service(self, image: GalleryImage, index: int) -> Picture | None:
        if index >= len(image.result_urls):
            return None
        try:
            async with self.media.get(image.result_urls[index], allow_redirects=False) as upstream:
                kind = upstream.headers.get("Content-Type", "").split(";")[0]
                if upstream.status != 200 or not _acceptable(kind, image):
                    return None
                body = await upstream.content.read(self.max_bytes + 1)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            log.info("gallery image %s could not be fetched from the image service", image.id)
            return None
        return Picture(body, kind) if len(body) <= self.max_bytes else None
