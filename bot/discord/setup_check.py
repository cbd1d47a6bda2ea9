"""`python -m bot check`: what works and what does not, with the configured token and key.

It logs in as the bot over REST only (no gateway session, so a running bot keeps every interaction),
works out the bot's permissions in each text channel from the roles and overwrites, asks the image API
about a task that does not exist (authenticated, free), compares the commands Discord has with the
bot's, and prints the invite link with the permissions the bot needs.

Exit codes: 0 everything is in order, 1 something is broken (listed as PROBLEM lines), 2 the
configuration (a setting missing or malformed: nothing was checked).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

import aiohttp
import discord

from bot.adapters import image_api
from bot.adapters.image_api import ApiError, BadKeyError, TaskNotFoundError
from bot.discord.checks import missing_permissions
from bot.discord.client import EXTENSIONS, ImagineBot, point_discord_at
from bot.ops.config import Settings
from bot.ops.preflight import PreflightError, discord_gateway_url

INVITE_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    embed_links=True,
    attach_files=True,
    read_message_history=True,
)


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def ok(self, text: str) -> None:
        self.lines.append(f"ok       {text}")

    def problem(self, text: str) -> None:
        self.lines.append(f"PROBLEM  {text}")
        self.problems.append(text)

    def note(self, text: str) -> None:
        self.lines.append(f"         {text}")


class _CheckingBot(ImagineBot):
    """The bot's own class with its commands loaded, but nothing started: no store, no runner."""

    async def setup_hook(self) -> None:
        for extension in EXTENSIONS:
            await self.load_extension(extension)


def _signature(command: dict[str, Any]) -> Any:
    options = sorted((_signature(option) for option in command.get("options") or []), key=str)
    return (
        command.get("name"),
        command.get("type", 1),
        command.get("description", ""),
        bool(command.get("required", False)),
        tuple(options),
    )


MENU_KINDS = {2: "user", 3: "message"}  # application command types other than 1 (slash commands)


def command_label(name: str, kind: int) -> str:
    """How a member finds it: `/imagine` for a slash command, a context menu by its name."""
    return f"/{name}" if kind not in MENU_KINDS else f'the "{name}" {MENU_KINDS[kind]} menu'


def plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


async def _check_commands(bot: ImagineBot, app_id: int, report: Report) -> None:
    payloads = [cmd.to_dict(bot.tree) for cmd in bot.tree.get_commands()]
    local = {c["name"]: _signature(c) for c in payloads}
    kinds = {c["name"]: int(c.get("type", 1)) for c in payloads}
    guild_id = bot.settings.dev_guild_id
    where = f"the dev server {guild_id}" if guild_id else "Discord (global)"
    try:
        if guild_id:
            remote_raw = await bot.http.get_guild_commands(app_id, guild_id)
        else:
            remote_raw = await bot.http.get_global_commands(app_id)
    except discord.HTTPException as error:
        report.problem(f"commands: cannot read the commands on {where} ({error.status})")
        return
    remote = {c["name"]: _signature(dict(c)) for c in remote_raw}
    kinds.update({c["name"]: int(c.get("type", 1)) for c in remote_raw if c["name"] not in kinds})
    missing = sorted(set(local) - set(remote))
    changed = sorted(name for name in set(local) & set(remote) if local[name] != remote[name])
    extra = sorted(set(remote) - set(local))
    if not (missing or changed or extra):
        report.ok(f"commands: all {len(local)} are synced to {where}")
        return
    parts = [
        f"{label}: {', '.join(command_label(n, kinds.get(n, 1)) for n in names)}"
        for label, names in (("missing", missing), ("outdated", changed), ("unknown to this bot", extra))
        if names
    ]
    report.problem(f"commands on {where} differ from this bot's ({'; '.join(parts)}); start the bot to sync")


TEXT_CHANNEL_TYPES = (0, 5)  # text and announcement channels: where members use the bot


def channel_permissions(
    guild_id: int,
    bot_id: int,
    member_roles: list[int],
    roles: dict[int, int],
    overwrites: list[dict[str, Any]],
) -> discord.Permissions:
    """Discord's permission algorithm: roles, then @everyone, role and member overwrites of the channel."""
    base = discord.Permissions(roles.get(guild_id, 0))
    for role_id in member_roles:
        base.value |= roles.get(role_id, 0)
    if base.administrator:
        return discord.Permissions.all()
    by_id = {int(o["id"]): o for o in overwrites}
    everyone = by_id.get(guild_id)
    if everyone is not None:
        base.handle_overwrite(int(everyone["allow"]), int(everyone["deny"]))
    allow = deny = 0
    for role_id in member_roles:
        overwrite = by_id.get(role_id)
        if overwrite is not None and int(overwrite.get("type", 0)) == 0:
            allow, deny = allow | int(overwrite["allow"]), deny | int(overwrite["deny"])
    base.handle_overwrite(allow, deny)
    mine = by_id.get(bot_id)
    if mine is not None and int(mine.get("type", 0)) == 1:
        base.handle_overwrite(int(mine["allow"]), int(mine["deny"]))
    return base


async def _check_guilds(bot: ImagineBot, report: Report) -> None:
    """Over REST only: no gateway session, so a running bot's interactions are never touched."""
    assert bot.user is not None
    guilds = await bot.http.get_guilds(200, with_counts=False)
    if not guilds:
        report.problem("servers: the bot is in no server yet; invite it with the link below")
        return
    for guild in guilds:
        guild_id = int(guild["id"])
        try:
            roles = {int(r["id"]): int(r["permissions"]) for r in await bot.http.get_roles(guild_id)}
            member = await bot.http.get_member(guild_id, bot.user.id)
            channels = await bot.http.get_all_guild_channels(guild_id)
        except discord.HTTPException as error:
            report.problem(f"server {guild['name']} ({guild_id}): cannot read its channels ({error.status})")
            continue
        member_roles = [int(r) for r in member["roles"]]
        lacking: list[str] = []
        visible = 0
        for channel in sorted(channels, key=lambda c: int(c.get("position", 0))):
            if channel.get("type") not in TEXT_CHANNEL_TYPES:
                continue
            overwrites = list(channel.get("permission_overwrites", []))
            allowed = channel_permissions(guild_id, bot.user.id, member_roles, roles, overwrites)
            if not allowed.view_channel:
                continue  # a channel hidden from the bot on purpose is not a problem
            visible += 1
            missing = missing_permissions(allowed)
            if missing:
                lacking.append(f"#{channel.get('name')} ({channel['id']}): {', '.join(missing)}")
        if lacking:
            report.problem(f"server {guild['name']} ({guild_id}): the bot lacks permissions in")
            for line in lacking:
                report.note(f"  {line}")
        else:
            report.ok(
                f"server {guild['name']} ({guild_id}): every permission in"
                f" {plural(visible, 'visible channel')}"
            )


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """The probe's 404 is the answer it wants, not a warning: the API client's log is held back
    while it runs (any other answer is reported by the check itself)."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


async def _check_key(settings: Settings, report: Report) -> None:
    async with aiohttp.ClientSession() as session:
        api = settings.image_api(session)
        try:
            # A task that cannot exist: the answer proves the key is accepted, and nothing is billed.
            with _quiet(image_api.__name__):
                await api.poll(f"imagine-bot-check-{secrets.token_hex(8)}")
        except TaskNotFoundError:
            pass
        except BadKeyError:
            report.problem(
                f"MOUNTSEA_API_KEY: {settings.base_url} refused the key (bad, revoked or unfunded)"
            )
            return
        except ApiError as error:
            report.problem(f"MOUNTSEA_API_KEY: could not ask {settings.base_url} ({error})")
            return
    report.ok(f"MOUNTSEA_API_KEY: accepted by {settings.base_url}")


async def run_check(settings: Settings, out: TextIO = sys.stdout) -> int:
    report = Report()
    assert settings.discord_token is not None
    await _check_key(settings, report)
    api_base = settings.discord_api_base or discord.http.Route.BASE
    try:
        gateway = await discord_gateway_url(api_base)
    except PreflightError as error:
        report.problem(str(error))
        return _finish(report, None, out)
    if settings.discord_api_base:
        point_discord_at(api_base, gateway)

    bot = _CheckingBot(settings)
    app_id: int | None = None
    async with bot:
        try:
            await bot.login(settings.discord_token.reveal())
        except discord.LoginFailure:
            report.problem("DISCORD_TOKEN: Discord refused the token; reset it in the Developer Portal")
            return _finish(report, None, out)
        assert bot.user is not None
        app = await bot.application_info()
        app_id = app.id
        report.ok(f"DISCORD_TOKEN: logged in as {bot.user} (application id {app_id})")
        await _check_commands(bot, app_id, report)
        await _check_guilds(bot, report)
    return _finish(report, app_id, out)


def _finish(report: Report, app_id: int | None, out: TextIO) -> int:
    for line in report.lines:
        print(line, file=out)
    if app_id is not None:
        link = discord.utils.oauth_url(
            app_id, permissions=INVITE_PERMISSIONS, scopes=("bot", "applications.commands")
        )
        print(f"\ninvite link: {link}", file=out)
        # The user install (DMs, group DMs, servers without the bot); the Developer Portal's
        # Installation page must have User Install enabled for it to work.
        personal = f"https://discord.com/oauth2/authorize?client_id={app_id}&integration_type=1&scope=applications.commands"
        print(f"user install link: {personal}", file=out)
    if report.problems:
        print(f"\n{len(report.problems)} problem(s) found.", file=out)
        return 1
    print("\neverything is in order.", file=out)
    return 0
