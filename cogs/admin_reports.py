"""/imagine-admin reports: the server's settings at a glance, stats, and the usage export."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.core import messages, reports
from bot.core.durations import describe_seconds
from bot.core.i18n import nt, t
from bot.core.policy.quotas import day_bounds
from bot.discord.admin import AdminCog, Interaction
from bot.discord.checks import MODLOG_NEEDS, missing_permissions
from bot.discord.replies import NO_PINGS, private_locale, reply

if TYPE_CHECKING:
    from bot.discord.bot_base import ImagineBotBase

EXPORT_CHUNK = 5000
UPLOAD_MARGIN = 64 * 1024  # room for the multipart envelope around the CSV


def _members(count: int, locale: str) -> str:
    return nt(locale, "1 member", "{count} members", count)


def _credits(count: int, locale: str) -> str:
    return nt(locale, "1 credit", "{count} credits", count)


class AdminReports(AdminCog):
    # -- settings ----------------------------------------------------------------------------------------

    @app_commands.command(
        name="settings", description="This server's current settings, and what I may not do"
    )
    async def settings(self, interaction: Interaction) -> None:
        guild_id = self.gid(interaction)
        store = self.bot.store
        locale = private_locale(interaction)
        policy = await store.settings.guild_policy(guild_id)
        roles = await store.settings.role_quotas(guild_id)
        count_roles = await store.settings.role_count_limits(guild_id)
        overview = await store.ops.quota_overview(guild_id)
        rules = await store.settings.rules(guild_id)
        bans = await store.settings.bans(guild_id, self.now())
        styles = await store.styles.all(guild_id)
        none = t(locale, "none")
        role_text = (
            ", ".join(
                f"<@&{role}> {reports.limit_text(limit, locale)}" for role, limit in sorted(roles.items())
            )
            if roles
            else none
        )
        if policy.modlog_channel_id is None:
            modlog = t(locale, "Mod-log: off")
        elif policy.modlog_finished:
            modlog = t(
                locale,
                "Mod-log: {channel} (refusals and finished images)",
                channel=f"<#{policy.modlog_channel_id}>",
            )
        else:
            modlog = t(locale, "Mod-log: {channel}", channel=f"<#{policy.modlog_channel_id}>")
        cooldown = describe_seconds(policy.cooldown_seconds, locale) if policy.cooldown_seconds else none
        lines = [
            t(locale, "⚙️ **Image bot settings for this server**"),
            t(
                locale,
                "Daily limit (default): {limit}",
                limit=self.default_text(policy.default_quota, locale),
            ),
            t(locale, "Role limits: {roles}", roles=role_text),
            t(
                locale,
                "Member limits: {members} with a limit of their own, {unlimited} unlimited",
                members=_members(overview.personal_limits, locale),
                unlimited=overview.unlimited,
            ),
            t(
                locale,
                "Credits in use: {credits} held by {holders}",
                credits=_credits(overview.credits, locale),
                holders=_members(overview.credit_holders, locale),
            ),
            t(locale, "Cooldown: {cooldown}", cooldown=cooldown),
            t(locale, "Images at once per member: {count}", count=policy.max_running),
            t(
                locale,
                "Images per request (count-limit): at most {count}; roles with their own: {roles}",
                count=policy.count_limit,
                roles=", ".join(f"<@&{role}> {limit}" for role, limit in sorted(count_roles.items())) or none,
            ),
            t(locale, "Time zone (days and reports): {zone}", zone=policy.timezone),
            t(
                locale,
                "Server cap: {cap}",
                cap=reports.optional_limit(policy.daily_cap, none=none, locale=locale),
            ),
            t(locale, "Owner and Manage Server members: exempt from limits")
            if policy.exempt_managers
            else t(locale, "Owner and Manage Server members: count like everyone"),
            t(locale, "Cancelled images: refunded")
            if policy.refund_cancelled
            else t(locale, "Cancelled images: count toward the limit"),
            modlog,
            t(locale, "Prompt rules: {rules}; bans in force: {bans}", rules=len(rules), bans=len(bans)),
            t(locale, "Styles: {count}; private images: allowed", count=len(styles))
            if policy.private_images
            else t(locale, "Styles: {count}; private images: not allowed", count=len(styles)),
        ]
        lines += self._permission_warnings(interaction, policy.modlog_channel_id, locale)
        await reply(interaction, "\n".join(lines))

    def _permission_warnings(self, interaction: Interaction, modlog_id: int | None, locale: str) -> list[str]:
        """What the bot lacks here (Discord's own answer for this channel) and in the mod-log channel."""
        warnings: list[str] = []
        here = missing_permissions(interaction.app_permissions)
        if here:
            warnings.append(
                t(locale, "⚠️ In this channel I lack: {permissions}.", permissions=", ".join(here))
            )
        guild = interaction.guild
        if modlog_id and guild is not None:
            channel = guild.get_channel(modlog_id)
            if channel is None:
                warnings.append(t(locale, "⚠️ The mod-log channel no longer exists or I cannot see it."))
            else:
                lacking = missing_permissions(channel.permissions_for(guild.me), MODLOG_NEEDS)
                if lacking:
                    warnings.append(
                        t(
                            locale,
                            "⚠️ In the mod-log channel I lack: {permissions}.",
                            permissions=", ".join(lacking),
                        )
                    )
        if not warnings:
            if modlog_id:
                warnings.append(t(locale, "✅ I have every permission I need here and in the mod-log."))
            else:
                warnings.append(t(locale, "✅ I have every permission I need here."))
        return warnings

    # -- reports -----------------------------------------------------------------------------------------

    @app_commands.command(
        name="stats", description="Generations, refusals and top users: today, 7 and 30 days"
    )
    async def stats(self, interaction: Interaction) -> None:
        guild_id = self.gid(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        policy = await self.bot.store.settings.guild_policy(guild_id)
        now = self.now()
        day_start, _ = day_bounds(now, policy.timezone)
        windows = [
            reports.Window(label, await self.bot.store.usage.stats(guild_id, since))
            for label, since in reports.report_windows(now, day_start)
        ]
        locale = private_locale(interaction)
        if interaction.guild is not None:
            title = t(locale, "📊 Image bot report for {name}", name=interaction.guild.name)
        else:
            title = t(locale, "📊 Image bot report for this server")
        text = reports.stats_text(windows, title=title, timezone=policy.timezone, locale=locale)
        await reply(interaction, text)

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
        locale = private_locale(interaction)
        policy = await self.bot.store.settings.guild_policy(guild_id)
        try:
            begin, finish = reports.export_bounds(start, end, policy.timezone)
        except reports.ReportError as error:
            why = error.text.render(locale)
            await reply(interaction, t(locale, "Nothing exported: {reason}.", reason=why))
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        budget = max(interaction.filesize_limit - UPLOAD_MARGIN, 64 * 1024)
        table = await self._export_rows(guild_id, begin, finish, reports.UsageCsv(budget))
        reason = (
            t(locale, "the limit of {count} rows", count=reports.EXPORT_MAX_ROWS)
            if table.rows >= table.max_rows
            else t(
                locale, "the upload limit of {size}", size=messages.human_bytes(interaction.filesize_limit)
            )
        )
        text = reports.export_text(
            table.rows, start, end, policy.timezone, capped=table.full, cap_reason=reason, locale=locale
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
        return await reports.fill_export(self.bot.store.usage, guild_id, begin, finish, table, EXPORT_CHUNK)


async def setup(bot: ImagineBotBase) -> None:
    await bot.add_cog(AdminReports(bot))
