"""/imagine-admin reports: the server's settings at a glance, stats, and the usage export."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot import messages, reports
from bot.discord.admin import AdminCog, Interaction, plural
from bot.discord.checks import MODLOG_NEEDS, missing_permissions
from bot.discord.replies import NO_PINGS, reply
from bot.durations import describe_seconds
from bot.quotas import day_bounds

if TYPE_CHECKING:
    from bot.app import ImagineBot

EXPORT_CHUNK = 5000
UPLOAD_MARGIN = 64 * 1024  # room for the multipart envelope around the CSV


class AdminReports(AdminCog):
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
            f"Daily limit (default): {self.default_text(policy.default_quota)}",
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
            f"Styles: {len(await store.styles(guild_id))}; private images: "
            + ("allowed" if policy.private_images else "not allowed"),
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
    await bot.add_cog(AdminReports(bot))
