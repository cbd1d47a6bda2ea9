"""Who may open a server's dashboard, and what they may change there: the bot's own two roles.

- a **moderator**: the owner, Manage Server or Manage Messages (as bot/discord/checks.py decides in
  Discord): sees the server's settings, statistics and the prompt tester;
- a **server admin**: the owner or Manage Server (what `/imagine-admin` needs): changes settings.

At sign-in the member's permissions come from Discord's own list of their servers (OAuth2 `guilds`);
the session keeps the servers where they are staff. Permissions change, so the role is asked of Discord
again with the bot's token (the member's roles and the server's roles) when the session's answer is
older than ACCESS_TTL, and before every change. A server that is not in the session's list, whatever id
the address carries, has no dashboard for this member."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass

from aiohttp_session import Session

from bot.web.discord_rest import (
    ADMINISTRATOR,
    MANAGE_GUILD,
    MANAGE_MESSAGES,
    DiscordRest,
    GuildInfo,
    MemberInfo,
)

ACCESS_TTL = 180.0  # seconds a role read from Discord is trusted for reading pages
MAX_STAFF_SERVERS = 25  # kept in the encrypted cookie, so bounded
STAFF_KEY = "staff"


class Role(enum.IntEnum):
    NONE = 0
    MODERATOR = 1
    ADMIN = 2


def role_for(permissions: int, *, owner: bool = False) -> Role:
    if owner or permissions & (ADMINISTRATOR | MANAGE_GUILD):
        return Role.ADMIN
    if permissions & MANAGE_MESSAGES:
        return Role.MODERATOR
    return Role.NONE


def member_role(guild: GuildInfo, member: MemberInfo) -> Role:
    return role_for(guild.permissions_of(member), owner=guild.owner_id == member.user_id)


def staff_at_sign_in(permissions: dict[int, int], now: float) -> dict[str, list[int]]:
    """The servers where the member signing in is a moderator or server admin, for the session:
    server id -> [role, when it was read]. Discord's `permissions` of a server already hold every
    permission for its owner. Names are not kept: the cookie stays small, and pages ask Discord."""
    staff: dict[str, list[int]] = {}
    for guild_id in sorted(permissions):
        role = role_for(permissions[guild_id])
        if role is not Role.NONE and len(staff) < MAX_STAFF_SERVERS:
            staff[str(guild_id)] = [int(role), int(now)]
    return staff


@dataclass(frozen=True)
class Access:
    guild: GuildInfo
    user_id: int
    role: Role

    @property
    def admin(self) -> bool:
        return self.role is Role.ADMIN


class NoAccess(Exception):
    """Not staff of that server (or no such server, or the bot is not in it): no dashboard."""


class NotAdmin(Exception):
    """A moderator asking for what only server admins may change."""


def staff_servers(session: Session) -> dict[str, list[int]]:
    found = session.get(STAFF_KEY)
    return found if isinstance(found, dict) else {}


def _entry(value: object) -> tuple[Role, float] | None:
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return Role(value[0]) if value[0] in {r.value for r in Role} else Role.NONE, float(value[1])
    return None


async def check_access(
    session: Session, rest: DiscordRest, user_id: int, guild_id: int, *, admin: bool, write: bool
) -> Access:
    """The member's role in the server, asked of Discord again when stale or before a write."""
    staff = staff_servers(session)
    entry = _entry(staff.get(str(guild_id)))
    if entry is None:
        raise NoAccess
    now = time.time()
    guild = await rest.guild(guild_id, fresh=write)
    if guild is None:  # the bot left, or never was in it
        raise NoAccess
    role, read_at = entry
    if write or now - read_at > ACCESS_TTL:
        member = await rest.member(guild_id, user_id)
        role = member_role(guild, member) if member is not None else Role.NONE
        if role is Role.NONE:
            staff.pop(str(guild_id), None)
        else:
            staff[str(guild_id)] = [int(role), int(now)]
        session[STAFF_KEY] = staff  # reassigned: aiohttp-session saves on assignment
        if role is Role.NONE:
            raise NoAccess
    if admin and role is not Role.ADMIN:
        raise NotAdmin
    return Access(guild, user_id, role)
