"""What the gateway's image route accepts (`POST /xai/images`, docs/API.md): kept in the core so that
commands, the terminal and the web pages check a request the same way before anything is billed."""

from __future__ import annotations

ASPECT_RATIOS = ("1:1", "2:3", "3:2", "9:16", "16:9")
MAX_PROMPT_CHARS = 5000
MAX_REFERENCE_IMAGES = 5
# Reference and result images the bot reads: the bytes decide, not the name or the header.
ALLOWED_IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")
