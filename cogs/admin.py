"""/imagine-admin: quotas, cooldown, time zone, bans, prompt rules, mod-log, settings, stats and export.

Discord hides the group from members without Manage Server (`default_permissions`), but a server can
override that in its integration settings, so every invocation is checked here again."""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot import messages, reports
from bot.durations import DurationError, describe_seconds, parse_duration
from bot.moderation import MAX_PATTERN_CHARS, RuleError, check_rule
from bot.quotas import day_bounds, discord_time, valid_timezone
from cogs.common import NO_PINGS
from cogs.usage import member_view, reply

if TYPE_CHECKING:
    from bot.app import ImagineBot

log = logging.getLogger(__name__)

NEEDS_MANAGE_SERVER = "You need the Manage Server permission to use `/imagine-admin`."
MAX_LIMIT = 1000
MAX_GUILD_CAP = 100_000
MAX_COOLDOWN = 86_400
MAX_RUNNING = 20
EXPORT_CHUNK = 5000
UPLOAD_MARGIN = 64 * 1024  # room for the multipart envelope around the CSV

RULE_KINDS = [
    app_commands.Choice(name="word or phrase", value="word"),
    app_commands.Choice(name="regular expression", value="regex"),
]

Interaction = discord.Interaction["ImagineBot"]
Target = discord.Member | discord.User


# What the bot needs where members use it, and in the mod-log channel.
CHANNEL_NEEDS = {
    "view_channel": "View Channel",
    "send_messages": "Send Messages",
    "embed_links": "Embed Links",
    "attach_files": "Attach Files",
    "read_message_history": "Read Message History",
}
MODLOG_NEEDS = {"view_channel": "View Channel", "send_messages": "Send Messages"}


def missing_permissions(permissions: discord.Permissions, needs: dict[str, str] = CHANNEL_NEEDS) -> list[str]:
    return [label for name, label in needs.items() if not getattr(permissions, name)]


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class Admin(
    commands.GroupCog,
    group_name="imagine-admin",
    group_description="Moderate the image bot in this server",
):
    quota = app_commands.Group(name="quota", description="Daily limits, one-off credits and exemptions")
    blocklist = app_commands.Group(name="blocklist", description="Prompt rules: blocked words and patterns")

    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot
        super().__init__()

    async def interaction_check(self, interaction: Interaction, /) -> bool:  # type: ignore[override]
        """Runs before every subcommand, whatever Discord's permission settings let through."""
        if interaction.guild_id is None:
            raise app_commands.NoPrivateMessage
        guild = interaction.guild
        if interaction.permissions.manage_guild or (
            guild is not None and guild.owner_id == interaction.user.id
        ):
            return True
        log.info(
            "refused /imagine-admin %s to user %s in guild %s (no Manage Server)",
            interaction.command.qualified_name if interaction.command else "?",
            interaction.user.id,
            interaction.guild_id,
        )
        raise app_commands.CheckFailure(NEEDS_MANAGE_SERVER)

    # -- helpers ---------------------------------------------------------------------------------------

    def now(self) -> float:
        return self.bot.clock.time()

    @staticmethod
    def gid(interaction: Interaction) -> int:
        assert interaction.guild_id is not None  # interaction_check refused DMs
        return interaction.guild_id

    async def _describe_limit(self, interaction: Interaction, member: Target) -> str:
        summary = await self.bot.store.usage_summary(
            member_view(interaction, member), self.now(), self.bot.settings.default_daily_quota
        )
        return reports.limit_text(summary.limit)

    @staticmethod
    async def out_of_range(
        interaction: Interaction, name: str, value: int | None, low: int, high: int
    ) -> bool:
        """Discord enforces option ranges; this keeps a forged or stale request from slipping past."""
        if value is None or low <= value <= high:
            return False
        await reply(interaction, f"`{name}` must be from {low} to {high}. Nothing was changed.")
        return True

    def _default_text(self, default: int | None) -> str:
        if default is None:
            return f"the bot default, {reports.limit_text(self.bot.settings.default_daily_quota)}"
        return reports.limit_text(default)

    # -- quota -----------------------------------------------------------------------------------------

    @quota.command(
        name="default", description="The daily limit of every member without a role or personal one"
    )
    @app_commands.describe(limit="Images per member per day (0 turns the bot off for them)")
    async def quota_default(
        self, interaction: Interaction, limit: app_commands.Range[int, 0, MAX_LIMIT]
    ) -> None:
        guild_id = self.gid(interaction)
        if await self.out_of_range(interaction, "limit", limit, 0, MAX_LIMIT):
            return
        before = await self.bot.store.guild_policy(guild_id)
        await self.bot.store.update_policy(guild_id, interaction.user.id, self.now(), default_quota=limit)
        await reply(
            interaction,
            f"The server's daily limit is now **{reports.limit_text(limit)}** "
            f"(was {self._default_text(before.default_quota)}). "
            "Role limits and personal limits still take precedence.",
        )

    @quota.command(name="role", description="Give a role its own daily limit, or clear it")
    @app_commands.describe(role="The role", limit="Images per day for its members (leave out to clear)")
    async def quota_role(
        self,
        interaction: Interaction,
        role: discord.Role,
        limit: app_commands.Range[int, 0, MAX_LIMIT] | None = None,
    ) -> None:
        guild_id = self.gid(interaction)
        if await self.out_of_range(interaction, "limit", limit, 0, MAX_LIMIT):
            return
        if role.is_default():
            await reply(interaction, "For everyone, use `/imagine-admin quota default` instead.")
            return
        before = (await self.bot.store.role_quotas(guild_id)).get(role.id)
        await self.bot.store.set_role_quota(guild_id, role.id, limit, interaction.user.id, self.now())
        was = reports.optional_limit(before)
        if limit is None:
            text = (
                f"{role.mention} no longer has a daily limit of its own (was {was}); its members "
                "follow their other roles or the server default."
            )
        else:
            text = (
                f"Daily limit for {role.mention} is now **{reports.limit_text(limit)}** (was {was}). "
                "A member with several limited roles gets the most generous of them."
            )
        await reply(interaction, text)

    @quota.command(name="user", description="Give a member a personal daily limit or no limit, or clear it")
    @app_commands.describe(
        member="The member",
        limit="Images per day for this member (leave out, with unlimited, to clear)",
        unlimited="True: no daily limit for this member",
    )
    async def quota_user(
        self,
        interaction: Interaction,
        member: Target,
        limit: app_commands.Range[int, 0, MAX_LIMIT] | None = None,
        unlimited: bool | None = None,
    ) -> None:
        guild_id = self.gid(interaction)
        if await self.out_of_range(interaction, "limit", limit, 0, MAX_LIMIT):
            return
        if unlimited and limit is not None:
            await reply(interaction, "Choose either a limit or `unlimited`, not both. Nothing was changed.")
            return
        await self.bot.store.set_user_quota(
            guild_id,
            member.id,
            limit=limit,
            unlimited=bool(unlimited),
            actor_id=interaction.user.id,
            now=self.now(),
        )
        effective = await self._describe_limit(interaction, member)
        if unlimited:
            text = f"{member.mention} now has **no daily limit** in this server."
        elif limit is not None:
            text = f"{member.mention} now has a personal limit of **{reports.limit_text(limit)}**."
        else:
            text = (
                f"{member.mention}'s personal limit is cleared: they follow their roles and the server "
                f"default again (now **{effective}**)."
            )
        await reply(interaction, text)

    @quota.command(name="grant", description="Give a member one-off credits (negative takes them back)")
    @app_commands.describe(member="The member", credits="Extra images, used after the daily limit")
    async def quota_grant(
        self,
        interaction: Interaction,
        member: Target,
        credits: app_commands.Range[int, -MAX_LIMIT, MAX_LIMIT],
    ) -> None:
        guild_id = self.gid(interaction)
        if await self.out_of_range(interaction, "credits", credits, -MAX_LIMIT, MAX_LIMIT):
            return
        if credits == 0:
            await reply(
                interaction,
                "Nothing to change: give a positive number to add credits, negative to take back.",
            )
            return
        balance = await self.bot.store.grant_credits(
            guild_id, member.id, credits, interaction.user.id, self.now()
        )
        if credits > 0:
            text = f"Gave {member.mention} **{plural(credits, 'one-off credit')}**"
        else:
            text = f"Took back {plural(-credits, 'credit')} from {member.mention}"
        await reply(
            interaction,
            f"{text}; they now have **{balance}**. Credits are used once the daily limit is reached.",
        )

    @quota.command(name="reset", description="Give a member back today's uses")
    @app_commands.describe(member="The member")
    async def quota_reset(self, interaction: Interaction, member: Target) -> None:
        guild_id = self.gid(interaction)
        given = await self.bot.store.reset_today(guild_id, member.id, interaction.user.id, self.now())
        if given:
            text = f"Gave {member.mention} back **{plural(given, 'use')}** of today."
        else:
            text = f"{member.mention} had no finished uses today to give back."
        await reply(interaction, text + " Images still running count until they finish.")

    @quota.command(name="guildcap", description="A daily cap for the whole server, or no cap")
    @app_commands.describe(limit="Images per day for all members together (leave out for no cap)")
    async def quota_guildcap(
        self, interaction: Interaction, limit: app_commands.Range[int, 1, MAX_GUILD_CAP] | None = None
    ) -> None:
        guild_id = self.gid(interaction)
        if await self.out_of_range(interaction, "limit", limit, 1, MAX_GUILD_CAP):
            return
        before = await self.bot.store.guild_policy(guild_id)
        await self.bot.store.update_policy(guild_id, interaction.user.id, self.now(), daily_cap=limit)
        was = "none" if before.daily_cap is None else plural(before.daily_cap, "image")
        if limit is None:
            text = f"The server has **no daily cap** any more (was {was})."
        else:
            text = f"The whole server can now make **{plural(limit, 'image')} a day** together (was {was})."
        await reply(interaction, text)

    @quota.command(name="exempt", description="Whether the owner and Manage Server members skip the limits")
    @app_commands.describe(enabled="True: the owner and members with Manage Server have no limits")
    async def quota_exempt(self, interaction: Interaction, enabled: bool) -> None:
        guild_id = self.gid(interaction)
        await self.bot.store.update_policy(guild_id, interaction.user.id, self.now(), exempt_managers=enabled)
        if enabled:
            text = (
                "The server owner and members with Manage Server are now **exempt** from daily limits, "
                "the cooldown, the running-images cap and the server cap."
            )
        else:
            text = (
                "The server owner and members with Manage Server now follow **the same limits** as everyone."
            )
        await reply(interaction, text)

    @quota.command(name="refund-cancelled", description="Whether a job its requester cancels still counts")
    @app_commands.describe(enabled="True: cancelled jobs are given back; False (default): they count")
    async def quota_refund_cancelled(self, interaction: Interaction, enabled: bool) -> None:
        guild_id = self.gid(interaction)
        await self.bot.store.update_policy(
            guild_id, interaction.user.id, self.now(), refund_cancelled=enabled
        )
        if enabled:
            text = "A job its requester cancels is now **given back**: it does not count against the quota."
        else:
            text = (
                "A job its requester cancels now **counts** against the quota (the image service may still "
                "bill it). Jobs cancelled before they were sent, or by a moderator, never count."
            )
        await reply(interaction, text)

    # -- pacing and time zone ----------------------------------------------------------------------------

    @app_commands.command(name="cooldown", description="Seconds a member waits between two requests")
    @app_commands.describe(seconds="0 turns the cooldown off; at most 86400 (a day)")
    async def cooldown(
        self, interaction: Interaction, seconds: app_commands.Range[int, 0, MAX_COOLDOWN]
    ) -> None:
        guild_id = self.gid(interaction)
        if await self.out_of_range(interaction, "seconds", seconds, 0, MAX_COOLDOWN):
            return
        before = await self.bot.store.guild_policy(guild_id)
        await self.bot.store.update_policy(
            guild_id, interaction.user.id, self.now(), cooldown_seconds=seconds
        )
        was = describe_seconds(before.cooldown_seconds) if before.cooldown_seconds else "none"
        if seconds:
            text = f"Members now wait **{describe_seconds(seconds)}** between two requests (was {was})."
        else:
            text = f"There is **no cooldown** any more (was {was})."
        await reply(interaction, text)

    @app_commands.command(
        name="concurrency", description="How many images one member may have running at once"
    )
    @app_commands.describe(jobs="1 to 20")
    async def concurrency(
        self, interaction: Interaction, jobs: app_commands.Range[int, 1, MAX_RUNNING]
    ) -> None:
        guild_id = self.gid(interaction)
        if await self.out_of_range(interaction, "jobs", jobs, 1, MAX_RUNNING):
            return
        before = await self.bot.store.guild_policy(guild_id)
        await self.bot.store.update_policy(guild_id, interaction.user.id, self.now(), max_running=jobs)
        await reply(
            interaction,
            f"A member may now have **{plural(jobs, 'image')}** running at once (was {before.max_running}).",
        )

    @app_commands.command(name="timezone", description="The time zone in which the server's day starts")
    @app_commands.describe(name="An IANA time zone such as Europe/Paris or America/New_York")
    async def timezone(self, interaction: Interaction, name: app_commands.Range[str, 1, 64]) -> None:
        guild_id = self.gid(interaction)
        zone_name = name.strip()
        if not valid_timezone(zone_name):
            await reply(
                interaction,
                f"{reports.code(zone_name)} is not a time zone I know. Pick one from the list, such as "
                "`Europe/Paris`, `America/New_York` or `UTC`. Nothing was changed.",
            )
            return
        before = await self.bot.store.guild_policy(guild_id)
        await self.bot.store.update_policy(guild_id, interaction.user.id, self.now(), timezone=zone_name)
        _, reset = day_bounds(self.now(), zone_name)
        await reply(
            interaction,
            f"The server's day now starts at 00:00 in **{zone_name}** (was {before.timezone}). "
            f"Daily limits next reset {discord_time(reset)} ({discord_time(reset, 'f')}).",
        )

    @timezone.autocomplete("name")
    async def timezone_autocomplete(
        self, interaction: Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=zone, value=zone) for zone in reports.match_timezones(current)]

    # -- bans --------------------------------------------------------------------------------------------

    @app_commands.command(name="ban", description="Stop a member from using the image bot here")
    @app_commands.describe(
        member="The member",
        reason="Shown to them when they are refused",
        duration="How long, like 30m, 12h, 7d or 2w (leave out: until you unban them)",
    )
    async def ban(
        self,
        interaction: Interaction,
        member: Target,
        reason: app_commands.Range[str, 1, 200] | None = None,
        duration: app_commands.Range[str, 1, 40] | None = None,
    ) -> None:
        guild_id = self.gid(interaction)
        now = self.now()
        expires_at: float | None = None
        if duration is not None:
            try:
                expires_at = now + parse_duration(duration)
            except DurationError as error:
                await reply(interaction, f"{member.mention} was not banned: {error}.")
                return
        cleaned = " ".join(reason.split())[:200] if reason else None
        await self.bot.store.ban(
            guild_id, member.id, reason=cleaned, expires_at=expires_at, actor_id=interaction.user.id, now=now
        )
        until = (
            f"until {discord_time(expires_at, 'f')} ({discord_time(expires_at)})"
            if expires_at is not None
            else "until you unban them"
        )
        why = f" Reason: {reports.code(cleaned)}." if cleaned else ""
        await reply(interaction, f"{member.mention} cannot use the image bot in this server {until}.{why}")

    @app_commands.command(name="unban", description="Let a banned member use the image bot again")
    @app_commands.describe(member="The member")
    async def unban(self, interaction: Interaction, member: Target) -> None:
        guild_id = self.gid(interaction)
        lifted = await self.bot.store.unban(guild_id, member.id, interaction.user.id, self.now())
        if lifted:
            text = f"{member.mention} can use the image bot again."
        else:
            text = f"{member.mention} was not banned; nothing to lift."
        await reply(interaction, text)

    @app_commands.command(name="bans", description="Members banned from the image bot, and until when")
    async def bans(self, interaction: Interaction) -> None:
        entries = await self.bot.store.bans(self.gid(interaction), self.now())
        await reply(interaction, reports.bans_text(entries))

    # -- prompt rules ------------------------------------------------------------------------------------

    @blocklist.command(name="add", description="Block prompts containing a word, phrase or pattern")
    @app_commands.describe(
        kind="A word or phrase (matched as whole words) or a regular expression",
        pattern="What to block; matching ignores case, accents, spacing and look-alike letters",
    )
    @app_commands.choices(kind=RULE_KINDS)
    async def blocklist_add(
        self,
        interaction: Interaction,
        kind: app_commands.Choice[str],
        pattern: app_commands.Range[str, 1, MAX_PATTERN_CHARS],
    ) -> None:
        guild_id = self.gid(interaction)
        try:
            checked = check_rule(kind.value, pattern)
            actor, now = interaction.user.id, self.now()
            rule = await self.bot.store.add_rule(guild_id, kind.value, checked, actor, now)
        except RuleError as error:
            await reply(interaction, f"That rule was not added: {error}.")
            return
        await reply(
            interaction,
            f"Added rule {reports.rule_text(rule)}. Prompts that match it are refused with a neutral "
            "message and logged with the rule.",
        )

    @blocklist.command(name="remove", description="Remove a prompt rule by its number")
    @app_commands.describe(rule="The rule's number, as `blocklist list` shows it")
    @app_commands.rename(rule="id")
    async def blocklist_remove(
        self, interaction: Interaction, rule: app_commands.Range[int, 1, 2**53]
    ) -> None:
        guild_id = self.gid(interaction)
        removed = await self.bot.store.remove_rule(guild_id, rule, interaction.user.id, self.now())
        if removed is None:
            await reply(
                interaction, f"There is no rule #{rule} in this server; see `/imagine-admin blocklist list`."
            )
            return
        await reply(interaction, f"Removed rule {reports.rule_text(removed)}.")

    @blocklist.command(name="list", description="The server's prompt rules")
    async def blocklist_list(self, interaction: Interaction) -> None:
        await reply(interaction, reports.rules_text(await self.bot.store.rules(self.gid(interaction))))

    # -- mod-log -----------------------------------------------------------------------------------------

    @app_commands.command(
        name="modlog", description="Where refusals (and optionally finished images) are logged"
    )
    @app_commands.describe(
        channel="The mod-log channel (leave out to turn the mod-log off)",
        finished="Also log every finished image, with a link to it",
    )
    async def modlog(
        self,
        interaction: Interaction,
        channel: discord.TextChannel | None = None,
        finished: bool | None = None,
    ) -> None:
        guild_id = self.gid(interaction)
        actor, now = interaction.user.id, self.now()
        if channel is None:
            await self.bot.store.update_policy(
                guild_id, actor, now, modlog_channel_id=None, modlog_finished=False
            )
            await reply(interaction, "The mod-log is **off**: refusals are no longer posted anywhere.")
            return
        before = await self.bot.store.guild_policy(guild_id)
        log_finished = before.modlog_finished if finished is None else finished
        await self.bot.store.update_policy(
            guild_id, actor, now, modlog_channel_id=channel.id, modlog_finished=log_finished
        )
        what = "every refusal and every finished image" if log_finished else "every refusal"
        text = f"The mod-log is now {channel.mention}: it gets a short entry for {what}."
        me = channel.guild.me
        if me is not None:
            allowed = channel.permissions_for(me)
            if not (allowed.view_channel and allowed.send_messages):
                text += (
                    f"\n⚠️ I cannot post in {channel.mention} yet: "
                    "give me View Channel and Send Messages there."
                )
        await reply(interaction, text)

    # -- settings ----------------------------------------------------------------------------------------

    @app_commands.command(
        name="settings", description="This server's current settings, and what I may not do"
    )
    async def settings(self, interaction: Interaction) -> None:
        guild_id = self.gid(interaction)
        store = self.bot.store
        policy = await store.guild_policy(guild_id)
        roles = await store.role_quotas(guild_id)
        overview = await store.quota_overview(guild_id)
        rules = await store.rules(guild_id)
        bans = await store.bans(guild_id, self.now())
        role_text = (
            ", ".join(f"<@&{role}> {reports.limit_text(limit)}" for role, limit in sorted(roles.items()))
            if roles
            else "none"
        )
        lines = [
            "⚙️ **Image bot settings for this server**",
            f"Daily limit (default): {self._default_text(policy.default_quota)}",
            f"Role limits: {role_text}",
            f"Member limits: {plural(overview.personal_limits, 'member')} with a limit of their own, "
            f"{overview.unlimited} unlimited",
            f"Credits in use: {plural(overview.credits, 'credit')} held by "
            f"{plural(overview.credit_holders, 'member')}",
            "Cooldown: " + (describe_seconds(policy.cooldown_seconds) if policy.cooldown_seconds else "none"),
            f"Images at once per member: {policy.max_running}",
            f"Time zone (days and reports): {policy.timezone}",
            f"Server cap: {reports.optional_limit(policy.daily_cap, none='none')}",
            "Owner and Manage Server members: "
            + ("exempt from limits" if policy.exempt_managers else "count like everyone"),
            "Cancelled images: " + ("refunded" if policy.refund_cancelled else "count toward the limit"),
            "Mod-log: "
            + (
                f"<#{policy.modlog_channel_id}>"
                + (" (refusals and finished images)" if policy.modlog_finished else "")
                if policy.modlog_channel_id
                else "off"
            ),
            f"Prompt rules: {len(rules)}; bans in force: {len(bans)}",
        ]
        lines += self._permission_warnings(interaction, policy.modlog_channel_id)
        await reply(interaction, "\n".join(lines))

    def _permission_warnings(self, interaction: Interaction, modlog_id: int | None) -> list[str]:
        """What the bot lacks here (Discord's own answer for this channel) and in the mod-log channel."""
        warnings: list[str] = []
        here = missing_permissions(interaction.app_permissions)
        if here:
            warnings.append(f"⚠️ In this channel I lack: {', '.join(here)}.")
        guild = interaction.guild
        if modlog_id and guild is not None:
            channel = guild.get_channel(modlog_id)
            if channel is None:
                warnings.append("⚠️ The mod-log channel no longer exists or I cannot see it.")
            else:
                lacking = missing_permissions(channel.permissions_for(guild.me), MODLOG_NEEDS)
                if lacking:
                    warnings.append(f"⚠️ In the mod-log channel I lack: {', '.join(lacking)}.")
        if not warnings:
            warnings.append(
                "✅ I have every permission I need here" + (" and in the mod-log." if modlog_id else ".")
            )
        return warnings

    # -- reports -----------------------------------------------------------------------------------------

    @app_commands.command(
        name="stats", description="Generations, refusals and top users: today, 7 and 30 days"
    )
    async def stats(self, interaction: Interaction) -> None:
        guild_id = self.gid(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        policy = await self.bot.store.guild_policy(guild_id)
        now = self.now()
        day_start, _ = day_bounds(now, policy.timezone)
        windows = [
            reports.Window(label, await self.bot.store.stats(guild_id, since))
            for label, since in reports.report_windows(now, day_start)
        ]
        name = interaction.guild.name if interaction.guild else "this server"
        title = f"📊 Image bot report for {name}"
        await reply(interaction, reports.stats_text(windows, title=title, timezone=policy.timezone))

    @app_commands.command(name="export", description="Usage rows of a date range as a CSV file")
    @app_commands.describe(
        start="First day, like 2025-01-31 (in the server's time zone)",
        end="Last day, included, like 2025-02-28",
    )
    async def export(
        self,
        interaction: Interaction,
        start: app_commands.Range[str, 1, 20],
        end: app_commands.Range[str, 1, 20],
    ) -> None:
        guild_id = self.gid(interaction)
        policy = await self.bot.store.guild_policy(guild_id)
        try:
            begin, finish = reports.export_bounds(start, end, policy.timezone)
        except reports.ReportError as error:
            await reply(interaction, f"Nothing exported: {error}.")
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        budget = max(interaction.filesize_limit - UPLOAD_MARGIN, 64 * 1024)
        table = await self._export_rows(guild_id, begin, finish, reports.UsageCsv(budget))
        reason = (
            f"the limit of {reports.EXPORT_MAX_ROWS} rows"
            if table.rows >= table.max_rows
            else f"the upload limit of {messages.human_bytes(interaction.filesize_limit)}"
        )
        text = reports.export_text(
            table.rows, start, end, policy.timezone, capped=table.full, cap_reason=reason
        )
        if table.rows == 0:
            await reply(interaction, text)
            return
        upload = discord.File(
            io.BytesIO(table.data()), filename=reports.export_filename(guild_id, start, end)
        )
        await interaction.followup.send(text, file=upload, ephemeral=True, allowed_mentions=NO_PINGS)

    async def _export_rows(
        self, guild_id: int, begin: float, finish: float, table: reports.UsageCsv
    ) -> reports.UsageCsv:
        return await reports.fill_export(self.bot.store, guild_id, begin, finish, table, EXPORT_CHUNK)


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Admin(bot))
