"""Reading a reference image from its link, bounded in time and size, to tell whether it is usable.

Two kinds of links, two levels of trust:
- a link a member put in the bill ("Use as reference" on a message whose embeds show images: a link
  preview or a webhook's embed can name any address) is read like a result image, through the safe
  session (`media.download_image`: public addresses only, each redirect checked, the size capped, the
  content sniffed) by `check_linked_references`, before anything is admitted or sent;
- the operator's own `--ref` links (the terminal command) and the sandbox's reading of a submit's
  references (it stands in for the real service, which must read the image too) use
  `reference_problem`, a plain bounded download whose answer is worded to follow the link.
No Discord here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from urllib.parse import unquote, urlsplit

import aiohttp

from bot.adapters.media import DownloadError, download_image, sniff_type
from bot.core.i18n import N_
from bot.core.messages import human_bytes, safe_name
from bot.core.policy.validation import InputRefused
from bot.core.texts import msg

log = logging.getLogger(__name__)

MAX_REDIRECTS = 3
LINK_TIMEOUT = 10.0
"""Seconds for reading one linked reference image, connection and body together."""
LINK_REFUSED = N_("The linked image {name} cannot be used as a reference: {reason}.")


async def check_linked_references(
    session: aiohttp.ClientSession, urls: Sequence[str], *, max_bytes: int, timeout: float = LINK_TIMEOUT
) -> None:
    """Read every link as a result image would be read; raise InputRefused (a catalog text naming
    the first unusable link and why) unless each is a PNG, JPEG, WebP or GIF of at most `max_bytes`
    on a public address (or an allowed host). `session` must come from `safe_fetch.open_session`."""
    problems = await asyncio.gather(*(_link_problem(session, url, max_bytes, timeout) for url in urls))
    for url, problem in zip(urls, problems, strict=True):
        if problem is not None:
            raise InputRefused(msg(LINK_REFUSED, name=f"`{_link_name(url)}`", reason=msg(problem)))


async def _link_problem(
    session: aiohttp.ClientSession, url: str, max_bytes: int, timeout: float
) -> str | None:
    if not url.startswith(("https://", "http://")):
        return N_("the link is not a web address")
    try:
        await download_image(session, url, max_bytes=max_bytes, timeout=timeout)
    except DownloadError as exc:
        # The member reads what kind of problem it was; where the link led stays in the log.
        log.info("a linked reference image was refused: %s", exc.detail)
        return str(exc)
    return None


def _link_name(url: str) -> str:
    """What the member recognizes a link by: its file name, else its host."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return safe_name(url)
    name = unquote(parts.path.rstrip("/").rsplit("/", 1)[-1]) or parts.hostname or url
    return safe_name(name)


async def reference_problem(
    session: aiohttp.ClientSession, url: str, *, max_bytes: int, timeout: float = 15.0
) -> str | None:
    """None if `url` serves a PNG, JPEG, WebP or GIF of at most `max_bytes`; else what is wrong, in
    words fit to show after the link ("could not be downloaded (HTTP 404)")."""
    too_large = f"is larger than {human_bytes(max_bytes)}"
    try:
        async with session.get(
            url, timeout=aiohttp.ClientTimeout(total=timeout), max_redirects=MAX_REDIRECTS
        ) as response:
            if response.status != 200:
                return f"could not be downloaded (HTTP {response.status})"
            if response.content_length is not None and response.content_length > max_bytes:
                return too_large
            data = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                data += chunk
                if len(data) > max_bytes:
                    return too_large
    except TimeoutError:
        return "could not be downloaded (no answer in time)"
    except aiohttp.ClientConnectorError:
        return "could not be downloaded (its host could not be reached)"
    except aiohttp.TooManyRedirects:
        return f"could not be downloaded (more than {MAX_REDIRECTS} redirects)"
    except aiohttp.InvalidURL:
        return "is not a valid link"
    except aiohttp.ClientError as exc:
        return f"could not be downloaded ({type(exc).__name__})"
    if sniff_type(bytes(data[:16])) is None:
        return "is not a PNG, JPEG, WebP or GIF image"
    return None
