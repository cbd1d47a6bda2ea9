"""Reading a reference image from its link, bounded in time and size, to tell whether it is usable.

The terminal command checks `--ref` links with it before submitting, and the sandbox with it before
accepting a submit (the real service must read the image too). No Discord here."""

from __future__ import annotations

import aiohttp

from bot.adapters.media import sniff_type
from bot.core.messages import human_bytes

MAX_REDIRECTS = 3


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
