"""The thumbnail store: a small WebP (longest side 512 px) of every posted image, in a directory beside
the data (THUMBNAIL_DIR), not in the database: a million of them would swell backups and start-up
checks. Every process of a deployment shares the directory (a volume in compose.yaml).

The bot writes one when it posts an image (`keep_soon`, off the event loop, never failing a delivery);
the web gallery makes the missing ones (images posted before it existed) when they are first shown.
Beside them it keeps the Discord attachment links of each posted message (`links`): signed links that
expire, which the gallery refreshes through Discord before it fetches a full image. No Discord here."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from bot.adapters import media  # noqa: F401 - its pixel ceiling (Image.MAX_IMAGE_PIXELS) applies here too
from bot.core.executors import IMAGES

log = logging.getLogger(__name__)

LONGEST_SIDE = 512
QUALITY = 80
CONTENT_TYPE = "image/webp"
MAX_LINKS_BYTES = 64 * 1024


def make_thumbnail(data: bytes) -> bytes | None:
    """A WebP no larger than LONGEST_SIDE on either side; None when the bytes are not an image Pillow
    reads (a video, a broken file)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (LONGEST_SIDE, LONGEST_SIDE))  # JPEG: decode at a reduced size
            picture = ImageOps.exif_transpose(image)
            picture.thumbnail((LONGEST_SIDE, LONGEST_SIDE), Image.Resampling.LANCZOS)
            if picture.mode not in ("RGB", "RGBA"):
                picture = picture.convert("RGBA" if "A" in picture.getbands() else "RGB")
            out = io.BytesIO()
            picture.save(out, "WEBP", quality=QUALITY, method=4)
            return out.getvalue()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None


class ThumbnailStore:
    """Files under `root`: `<bucket>/<job>-<index>.webp` and `<bucket>/<job>.links` (JSON). Buckets of
    a thousand jobs keep every directory small; writes go to a temporary name and are renamed into
    place, so a reader (another process) never sees half a file."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._pending: set[asyncio.Task[None]] = set()

    def _folder(self, job_id: int) -> Path:
        return self.root / f"{job_id // 1000:06d}"

    def path(self, job_id: int, index: int) -> Path:
        return self._folder(job_id) / f"{job_id}-{index}.webp"

    def _links_path(self, job_id: int) -> Path:
        return self._folder(job_id) / f"{job_id}.links"

    def _write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        partial.write_bytes(data)
        os.replace(partial, path)

    # -- thumbnails -------------------------------------------------------------------------------

    def read(self, job_id: int, index: int) -> bytes | None:
        try:
            return self.path(job_id, index).read_bytes()
        except OSError:
            return None

    def write(self, job_id: int, index: int, image: bytes) -> bytes | None:
        """Make and keep the thumbnail of one image (blocking: call it in a worker thread)."""
        thumbnail = make_thumbnail(image)
        if thumbnail is not None:
            self._write(self.path(job_id, index), thumbnail)
        return thumbnail

    async def make(self, job_id: int, index: int, image: bytes) -> bytes | None:
        """`write` in the image pool, where the bot's own decoding runs: the loop never blocks."""
        return await IMAGES.run(self.write, job_id, index, image)

    def keep_soon(self, job_id: int, images: Sequence[bytes | None]) -> None:
        """After a delivery: make the job's thumbnails in the background. It never raises and never
        delays the delivery; a thumbnail that could not be made is made when first shown."""
        if not any(images):
            return
        task = asyncio.get_running_loop().create_task(self._keep(job_id, list(images)))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _keep(self, job_id: int, images: list[bytes | None]) -> None:
        for index, data in enumerate(images):
            if data is None:
                continue
            try:
                await self.make(job_id, index, data)
            except Exception:  # a full disk, a permission: the gallery makes it later
                log.warning("job %s: could not keep thumbnail %s", job_id, index, exc_info=True)

    async def settle(self) -> None:
        """Wait for the thumbnails being made (tests; a clean stop)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    def forget(self, job_id: int) -> None:
        """An image deleted from Discord leaves no thumbnail or link behind."""
        folder = self._folder(job_id)
        for path in [*folder.glob(f"{job_id}-*.webp"), self._links_path(job_id)]:
            with contextlib.suppress(OSError):
                path.unlink()

    # -- Discord attachment links of a posted message --------------------------------------------------

    def links(self, job_id: int) -> list[str] | None:
        try:
            raw = self._links_path(job_id).read_bytes()[:MAX_LINKS_BYTES]
            found = json.loads(raw)
        except (OSError, ValueError):
            return None
        if isinstance(found, list) and all(isinstance(url, str) for url in found):
            return found
        return None

    def keep_links(self, job_id: int, urls: list[str]) -> None:
        try:
            self._write(self._links_path(job_id), json.dumps(urls).encode())
        except OSError:
            log.warning("job %s: could not keep its attachment links", job_id, exc_info=True)
