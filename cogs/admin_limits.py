"""/imagine-admin limits: daily quotas and credits, the server cap, exemption, refunds, cooldown,
concurrency, images per request (count-limit) and the time zone of the server's day.

These are settings writes, not job events: they go straight to the store (each write is one
transaction with its admin_log row), unlike cancellations and mod-log entries, which go through the
job runner."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.core import change_sentences as say
from bot.core import reports
from bot.core.change_sentences import IN_DISCORD, Describe
from bot.core.durations import describe_seconds
from bot.core.i18n import N_, nt, t
from bot.core.policy.quotas import MAX_COUNT, day_bounds, discord_time, valid_timezone
from bot.core.texts import msg
from bot.discord.admin import AdminCog, Interaction, Target
from bot.discord.replies import private_locale, reply

if TYPE_CHECKING:
    from bot.discord.bot_base import ImagineBotBase

MAX_LIMIT = 1000
MAX_GUILD_CAP = 100_000
MAX_COOLDOWN = 86_400
MAX_RUNNING = 20


class AdminLimits(AdminCog):
    quota = app_commands.Group(name="quota", description="Daily limits, one-off credits and exemptions")

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
        before = await self.bot.store.settings.guild_policy(guild_id)
        await self.bot.store.settings.update_policy(
            guild_id, interaction.user.id, self.now(), default_quota=limit
        )
        locale = private_locale(interaction)
        await reply(
            interaction,
            t(
                locale,
                "The server's daily limit is now **{limit}** (was {was}). "
                "Role limits and personal limits still take precedence.",
                limit=reports.limit_text(limit, locale),
                was=self.default_text(before.default_quota, locale),
            ),
        )
        await self.log_change(
            interaction,
            say.server_limit(limit, before.default_quota, self.bot.settings.default_daily_quota),
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
            await reply(interaction, N_("For everyone, use `/imagine-admin quota default` instead."))
            return
        before = (await self.bot.store.settings.role_quotas(guild_id)).get(role.id)
        await self.bot.store.settings.set_role_quota(
            guild_id, role.id, limit, interaction.user.id, self.now()
        )
        locale = private_locale(interaction)
        was = reports.optional_limit(before, none=t(locale, "none"), locale=locale)
        if limit is None:
            text = t(
                locale,
                "{role} no longer has a daily limit of its own (was {was}); its members follow their other "
                "roles or the server default.",
                role=role.mention,
                was=was,
            )
        else:
            text = t(
                locale,
                "Daily limit for {role} is now **{limit}** (was {was}). "
                "A member with several limited roles gets the most generous of them.",
                role=role.mention,
                limit=reports.limit_text(limit, locale),
                was=was,
            )
        await reply(interaction, text)
        await self.log_change(interaction, say.role_limit(role.id, limit, before))

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
            await reply(
                interaction, N_("Choose either a limit or `unlimited`, not both. Nothing was changed.")
            )
            return
        await self.bot.store.settings.set_user_quota(
            guild_id,
            member.id,
            limit=limit,
            unlimited=bool(unlimited),
            actor_id=interaction.user.id,
            now=self.now(),
        )
        effective = await self.describe_limit(interaction, member)
        locale = private_locale(interaction)
        if unlimited:
            text = t(locale, "{member} now has **no daily limit** in this server.", member=member.mention)
        elif limit is not None:
            text = t(
                locale,
                "{member} now has a personal limit of **{limit}**.",
                member=member.mention,
                limit=reports.limit_text(limit, locale),
            )
        else:
            text = t(
                locale,
                "{member}'s personal limit is cleared: they follow their roles and the server default again "
                "(now **{limit}**).",
                member=member.mention,
                limit=effective,
            )
        await reply(interaction, text)
        await self.log_change(interaction, say.member_limit(member.id, limit, bool(unlimited)))

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
                N_("Nothing to change: give a positive number to add credits, negative to take back."),
            )
            return
        balance = await self.bot.store.settings.grant_credits(
            guild_id, member.id, credits, interaction.user.id, self.now()
        )
        locale = private_locale(interaction)
        if credits > 0:
            text = nt(
                locale,
                "Gave {member} **1 one-off credit**",
                "Gave {member} **{count} one-off credits**",
                credits,
                member=member.mention,
            )
        else:
            text = nt(
                locale,
                "Took back 1 credit from {member}",
                "Took back {count} credits from {member}",
                -credits,
                member=member.mention,
            )
        await reply(
            interaction,
            t(
                locale,
                "{change}; they now have **{balance}**. Credits are used once the daily limit is reached.",
                change=text,
                balance=balance,
            ),
        )
        await self.log_change(interaction, say.credits(member.id, credits, balance))

    @quota.command(name="reset", description="Give a member back today's uses")
    @app_commands.describe(member="The member")
    async def quota_reset(self, interaction: Interaction, member: Target) -> None:
        guild_id = self.gid(interaction)
        given = await self.bot.store.settings.reset_today(
            guild_id, member.id, interaction.user.id, self.now()
        )
        locale = private_locale(interaction)
        if given:
            text = nt(
                locale,
                "Gave {member} back **1 use** of today.",
                "Gave {member} back **{count} uses** of today.",
                given,
                member=member.mention,
            )
        else:
            text = t(locale, "{member} had no finished uses today to give back.", member=member.mention)
        await reply(interaction, text + t(locale, " Images still running count until they finish."))
        await self.log_change(interaction, say.reset_today(member.id, given))

    @quota.command(name="guildcap", description="A daily cap for the whole server, or no cap")
    @app_commands.describe(limit="Images per day for all members together (leave out for no cap)")
    async def quota_guildcap(
        self, interaction: Interaction, limit: app_commands.Range[int, 1, MAX_GUILD_CAP] | None = None
    ) -> None:
        guild_id = self.gid(interaction)
        if await self.out_of_range(interaction, "limit", limit, 1, MAX_GUILD_CAP):
            return
        before = await self.bot.store.settings.guild_policy(guild_id)
        await self.bot.store.settings.update_policy(
            guild_id, interaction.user.id, self.now(), daily_cap=limit
        )
        locale = private_locale(interaction)
        was = t(locale, "none")
        if before.daily_cap is not None:
            was = nt(locale, "1 image", "{count} images", before.daily_cap)
        if limit is None:
            text = t(locale, "The server has **no daily cap** any more (was {was}).", was=was)
        else:
            text = t(
                locale,
                "The whole server can now make **{count} a day** together (was {was}).",
                count=nt(locale, "1 image", "{count} images", limit),
                was=was,
            )
        await reply(interaction, text)
        await self.log_change(interaction, say.server_cap(limit, before.daily_cap))

    @quota.command(name="exempt", description="Whether the owner and Manage Server members skip the limits")
    @app_commands.describe(enabled="True: the owner and members with Manage Server have no limits")
    async def quota_exempt(self, interaction: Interaction, enabled: bool) -> None:
        guild_id = self.gid(interaction)
        await self.bot.store.settings.update_policy(
            guild_id, interaction.user.id, self.now(), exempt_managers=enabled
        )
        if enabled:
            text = N_(
                "The server owner and members with Manage Server are now **exempt** from daily limits, "
                "the cooldown, the running-images cap and the server cap."
            )
        else:
            text = N_(
                "The server owner and members with Manage Server now follow **the same limits** as everyone."
            )
        await reply(interaction, text)
        await self.log_change(interaction, say.exempt(enabled))

    @quota.command(name="refund-cancelled", description="Whether a job its requester cancels still counts")
    @app_commands.describe(enabled="True: cancelled jobs are given back; False (default): they count")
    async def quota_refund_cancelled(self, interaction: Interaction, enabled: bool) -> None:
        guild_id = self.gid(interaction)
        await self.bot.store.settings.update_policy(
            guild_id, interaction.user.id, self.now(), refund_cancelled=enabled
        )
        if enabled:
            text = N_(
                "A job its requester cancels is now **given back**: it does not count against the quota."
            )
        else:
            text = N_(
                "A job its requester cancels now **counts** against the quota (the image service may still "
                "bill it). Jobs cancelled before they were sent, or by a moderator, never count."
            )
        await reply(interaction, text)
        await self.log_change(interaction, say.refund_cancelled(enabled))

    # -- pacing and time zone ----------------------------------------------------------------------------

    @app_commands.command(name="cooldown", description="Seconds a member waits between two requests")
    @app_commands.describe(seconds="0 turns the cooldown off; at most 86400 (a day)")
    async def cooldown(
        self, interaction: Interaction, seconds: app_commands.Range[int, 0, MAX_COOLDOWN]
    ) -> None:
        guild_id = self.gid(interaction)
        if await self.out_of_range(interaction, "seconds", seconds, 0, MAX_COOLDOWN):
            return
        before = await self.bot.store.settings.guild_policy(guild_id)
        await self.bot.store.settings.update_policy(
            guild_id, interaction.user.id, self.now(), cooldown_seconds=seconds
        )
        locale = private_locale(interaction)
        was = (
            describe_seconds(before.cooldown_seconds, locale)
            if before.cooldown_seconds
            else t(locale, "none")
        )
        if seconds:
            text = t(
                locale,
                "Members now wait **{time}** between two requests (was {was}).",
                time=describe_seconds(seconds, locale),
                was=was,
            )
        else:
            text = t(locale, "There is **no cooldown** any more (was {was}).", was=was)
        await reply(interaction, text)
        await self.log_change(interaction, say.cooldown(seconds, before.cooldown_seconds))

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
        before = await self.bot.store.settings.guild_policy(guild_id)
        await self.bot.store.settings.update_policy(
            guild_id, interaction.user.id, self.now(), max_running=jobs
        )
        await reply(
            interaction,
            t(
                private_locale(interaction),
                "A member may now have **{count}** running at once (was {was}).",
                count=nt(private_locale(interaction), "1 image", "{count} images", jobs),
                was=before.max_running,
            ),
        )
        await self.log_change(interaction, say.running(jobs, before.max_running))

    # -- images per request ------------------------------------------------------------------------------

    @app_commands.command(name="count-limit", description="The most images one /imagine may ask for (1-4)")
    @app_commands.describe(
        limit="1 to 4; leave out to clear a role's or member's own limit (or reset the server's to 4)",
        role="Give this role its own limit (a member with several gets the highest)",
        member="Give this member their own limit (it wins over their roles)",
    )
    async def count_limit(
        self,
        interaction: Interaction,
        limit: app_commands.Range[int, 1, MAX_COUNT] | None = None,
        role: discord.Role | None = None,
        member: Target | None = None,
    ) -> None:
        guild_id = self.gid(interaction)
        if await self.out_of_range(interaction, "limit", limit, 1, MAX_COUNT):
            return
        if role is not None and member is not None:
            await reply(interaction, N_("Choose either a role or a member, not both. Nothing was changed."))
            return
        if role is not None and role.is_default():
            await reply(interaction, N_("For everyone, use `/imagine-admin count-limit` without a role."))
            return
        store, now = self.bot.store.settings, self.now()
        server = (await store.guild_policy(guild_id)).count_limit
        change: Describe
        if role is not None:
            before = (await store.role_count_limits(guild_id)).get(role.id)
            await store.set_role_count_limit(guild_id, role.id, limit, interaction.user.id, now)
            change = say.role_count_limit(role.id, limit, before, server)
        elif member is not None:
            before = await store.user_count_limit(guild_id, member.id)
            await store.set_user_count_limit(guild_id, member.id, limit, interaction.user.id, now)
            change = say.member_count_limit(member.id, limit, before)
        else:
            await store.update_policy(guild_id, interaction.user.id, now, count_limit=limit)
            change = say.count_limit(limit, server)
        # The answer is the mod-log's sentence: it already says how the limits combine.
        text = change(IN_DISCORD, private_locale(interaction))
        await reply(interaction, text)
        await self.log_change(interaction, change)

    @app_commands.command(name="timezone", description="The time zone in which the server's day starts")
    @app_commands.describe(name="An IANA time zone such as Europe/Paris or America/New_York")
    async def timezone(self, interaction: Interaction, name: app_commands.Range[str, 1, 64]) -> None:
        guild_id = self.gid(interaction)
        zone_name = name.strip()
        if not valid_timezone(zone_name):
            await reply(
                interaction,
                msg(
                    "{zone} is not a time zone I know. Pick one from the list, such as `Europe/Paris`, "
                    "`America/New_York` or `UTC`. Nothing was changed.",
                    zone=reports.code(zone_name),
                ),
            )
            return
        before = await self.bot.store.settings.guild_policy(guild_id)
        await self.bot.store.settings.update_policy(
            guild_id, interaction.user.id, self.now(), timezone=zone_name
        )
        _, reset = day_bounds(self.now(), zone_name)
        await reply(
            interaction,
            msg(
                "The server's day now starts at 00:00 in **{zone}** (was {was}). "
                "Daily limits next reset {when} ({time}).",
                zone=zone_name,
                was=before.timezone,
                when=discord_time(reset),
                time=discord_time(reset, "f"),
            ),
        )
        await self.log_change(interaction, say.timezone(zone_name, before.timezone))

    @timezone.autocomplete("name")
    async def timezone_autocomplete(
        self, interaction: Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=zone, value=zone) for zone in reports.match_timezones(current)]


async def setup(bot: ImagineBotBase) -> None:
    await bot.add_cog(AdminLimits(bot))
