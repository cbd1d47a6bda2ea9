"""Server styles and members' own settings as plain data, with the rules a style must follow. No I/O."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.policy.quotas import MAX_COUNT
from bot.core.texts import Text, msg

MAX_STYLE_NAME = 32
MAX_STYLE_TEXT = 1000
# Discord's autocomplete shows at most 25 suggestions: every style of a server fits in one list.
MAX_STYLES = 25

# Where a member's finished images go (/settings): the channel, or privately where the server allows.
DELIVERY_CHANNEL = "channel"
DELIVERY_EPHEMERAL = "ephemeral"  # a message only they see, on the interaction (then a DM)
DELIVERY_DM = "dm"
DELIVERIES = (DELIVERY_CHANNEL, DELIVERY_EPHEMERAL, DELIVERY_DM)
PRIVATE_DELIVERIES = (DELIVERY_EPHEMERAL, DELIVERY_DM)


class StyleError(Exception):
    """A style that cannot be saved; `text` says what to change, in the moderator's language."""

    def __init__(self, text: Text) -> None:
        super().__init__(text)
        self.text = text


@dataclass(frozen=True)
class Style:
    name: str
    text: str
    created_by: int | None = None
    created_at: float | None = None


@dataclass(frozen=True)
class MemberSettings:
    """A member's own defaults in one server; None means "not set"."""

    aspect_ratio: str | None = None
    style: str | None = None
    delivery: str | None = None
    image_count: int | None = None  # images per /imagine when it leaves `count` out


@dataclass(frozen=True)
class RequestDefaults:
    """What a request needs besides its own options: the member's settings, the style it names (or
    their default style; None if it does not exist), and whether the server allows private images."""

    settings: MemberSettings
    style: Style | None
    private_allowed: bool
    count_limit: int = MAX_COUNT  # the most images one request may ask for (quotas.member_count_limit)

    @property
    def count(self) -> int:
        """Images per request when /imagine leaves `count` out: the member's default within the limit."""
        return min(self.settings.image_count or 1, self.count_limit)

    @property
    def deliver_to(self) -> str | None:
        """Where the finished image goes: a private way only if the member chose it and the server
        allows it; None is the channel."""
        wanted = self.settings.delivery
        return wanted if self.private_allowed and wanted in PRIVATE_DELIVERIES else None


def clean_style(name: str, text: str) -> Style:
    """The style as it will be stored, or StyleError saying what to change."""
    clean_name = " ".join(name.split())
    clean_text = " ".join(text.split())
    if not clean_name:
        raise StyleError(msg("a style needs a name"))
    if len(clean_name) > MAX_STYLE_NAME:
        raise StyleError(msg("a style name may be at most {count} characters", count=MAX_STYLE_NAME))
    if not all(ch.isprintable() for ch in clean_name) or "`" in clean_name:
        raise StyleError(msg("a style name may not hold backticks or control characters"))
    if not clean_text:
        raise StyleError(msg("a style needs a text"))
    if len(clean_text) > MAX_STYLE_TEXT:
        raise StyleError(msg("a style's text may be at most {count} characters", count=f"{MAX_STYLE_TEXT:,}"))
    if "\x00" in clean_text:
        raise StyleError(msg("a style's text may not hold a null byte"))
    return Style(clean_name, clean_text)
