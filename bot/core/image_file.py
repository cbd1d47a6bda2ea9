"""A finished image as the runner hands it to a sink: its bytes, or only its link and why it could not be
fetched (a text the member reads in their language)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.texts import Text

_EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "video/mp4": "mp4",  # a finished video travels the same way (bot/discord/video_delivery.py)
}


@dataclass(frozen=True)
class ImageFile:
    """A finished image in memory, or only its link when it could not be fetched."""

    url: str | None
    data: bytes | None
    content_type: str = "image/png"
    error: Text | None = None  # why it could not be fetched, for the member

    @property
    def extension(self) -> str:
        return _EXTENSIONS.get(self.content_type, "png")
