"""Who may see a server's gallery, checked on the server side: its gallery is on, and the signed-in
member belongs to the server.

At sign-in Discord lists the member's servers (and their permissions in each); the session keeps the
ones whose gallery is on. That knowledge goes stale: after MEMBERSHIP_TTL seconds, or for a server not
in the list (its gallery turned on later), the member is looked up again with the bot's token (the
answer is shared for a minute by the pictures of a page: bot/web/discord_rest.py). Someone
who left, or who edits a server id into the address, gets "Not found" like any other missing page."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from aiohttp_session import Session

from bot.web.discord_rest import ADMINISTRATOR, MANAGE_MESSAGES, DiscordRest, DiscordUnavailable

log = logging.getLogger(__name__)

MEMBERSHIP_TTL = 600.0  # seconds a membership (and its permissions) is trusted before asking again
GALLERIES = "galleries"  # session key: server id -> [name, permissions, checked at]
MAX_GALLERIES = 50  # what the cookie keeps


@dataclass(frozen=True)
class ServerAccess:
    guild_id: int
    name: str
    permissions: int

    @property
    def moderator(self) -> bool:
        """The bot's moderators: Manage Messages (or Administrator) in the server."""
        return bool(self.permissions & (MANAGE_MESSAGES | ADMINISTRATOR))


def remember(session: Session, servers: dict[int, tuple[str, int]], now: float | None = None) -> None:
    """At sign-in: the member's servers whose gallery is on, with their names and permissions."""
    now = time.time() if now is None else now
    kept = sorted(servers.items())[:MAX_GALLERIES]
    session[GALLERIES] = {str(g): [name[:100], perms, now] for g, (name, perms) in kept}


def listed(session: Session) -> list[tuple[int, str]]:
    """The galleries the header links to."""
    entries = session.get(GALLERIES) or {}
    return sorted(
        ((int(g), str(entry[0])) for g, entry in entries.items()), key=lambda item: item[1].casefold()
    )


async def maker_name(discord: DiscordRest | None, user_id: int) -> str | None:
    """Who made an image, for the members who see it in a server's gallery; None when Discord cannot
    say (no bot token, or not answering): the page shows the image without a name."""
    if discord is None:
        return None
    try:
        return await discord.user_name(user_id)
    except DiscordUnavailable:
        return None


async def server_access(
    session: Session,
    user_id: int,
    guild_id: int,
    discord: DiscordRest | None,
    now: float | None = None,
) -> ServerAccess | None:
    """The member's access to a server (whose gallery the caller checked is on), or None."""
    now = time.time() if now is None else now
    entries: dict[str, list[object]] = dict(session.get(GALLERIES) or {})
    entry = entries.get(str(guild_id))
    if entry is not None and now - float(str(entry[2])) < MEMBERSHIP_TTL:
        return ServerAccess(guild_id, str(entry[0]), int(str(entry[1])))
    if discord is None:
        return None  # no bot token to ask with: only a fresh sign-in vouches for the member
    try:
        roles, permissions = await discord.member_access(guild_id, user_id)
    except DiscordUnavailable as error:
        log.warning("could not check membership of server %s: %s", guild_id, error)
        return None
    if roles is None:
        if entry is not None:
            entries.pop(str(guild_id))
            session[GALLERIES] = entries
        return None
    name = str(entry[0]) if entry is not None else str(guild_id)
    if entry is not None and int(str(entry[1])) & ADMINISTRATOR and not permissions:
        permissions = int(str(entry[1]))  # an owner holds no role: what Discord said at sign-in stands
    if len(entries) < MAX_GALLERIES or entry is not None:
        entries[str(guild_id)] = [name, permissions, now]
        session[GALLERIES] = entries
    return ServerAccess(guild_id, name, permissions)
