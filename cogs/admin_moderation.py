"""/imagine-admin moderation: bans, prompt rules (blocklist) and the mod-log channel.

Settings writes, like the limits: they go straight to the store with their admin_log row."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.core import change_sentences as say
from bot.core import reports
from bot.core.change_sentences import IN_DISCORD
from bot.core.durations import DurationError, parse_duration
from bot.core.i18n import N_, t
from bot.core.policy.prompt_rules import MAX_PATTERN_CHARS, RuleError, check_rule
from bot.core.policy.quotas import discord_time
from bot.core.texts import msg
from bot.discord.admin import AdminCog, Interaction, Target
from bot.discord.replies import private_locale, reply

if TYPE_CHECKING:
    from bot.discord.bot_base import ImagineBotBase

RULE_KINDS = [
    app_commands.Choice(name="word or phrase", value="word"),
    app_commands.Choice(name="regular expression", value="regex"),
]


class AdminModeration(AdminCog):
    blocklist = app_commands.Group(name="blocklist", description="Prompt rules: blocked words and patterns")

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
                await reply(
                    interaction,
                    t(
                        private_locale(interaction),
                        "{member} was not banned: {error}.",
                        member=member.mention,
                        error=error.text.render(private_locale(interaction)),
                    ),
                )
                return
        cleaned = " ".join(reason.split())[:200] if reason else None
        await self.bot.store.settings.ban(
            guild_id, member.id, reason=cleaned, expires_at=expires_at, actor_id=interaction.user.id, now=now
        )
        locale = private_locale(interaction)
        until = (
            t(
                locale,
                "until {time} ({when})",
                time=discord_time(expires_at, "f"),
                when=discord_time(expires_at),
            )
            if expires_at is not None
            else t(locale, "until you unban them")
        )
        why = t(locale, " Reason: {reason}.", reason=reports.code(cleaned)) if cleaned else ""
        text = t(
            locale,
            "{member} cannot use the image bot in this server {until}.",
            member=member.mention,
            until=until,
        )
        await reply(interaction, text + why)
        seconds = None if expires_at is None else round(expires_at - now)
        await self.log_change(interaction, say.ban(member.id, cleaned, seconds))

    @app_commands.command(name="unban", description="Let a banned member use the image bot again")
    @app_commands.describe(member="The member")
    async def unban(self, interaction: Interaction, member: Target) -> None:
        guild_id = self.gid(interaction)
        lifted = await self.bot.store.settings.unban(guild_id, member.id, interaction.user.id, self.now())
        change = say.unban(member.id, lifted)
        await reply(interaction, change(IN_DISCORD, private_locale(interaction)))
        await self.log_change(interaction, change)

    @app_commands.command(name="bans", description="Members banned from the image bot, and until when")
    async def bans(self, interaction: Interaction) -> None:
        entries = await self.bot.store.settings.bans(self.gid(interaction), self.now())
        await reply(interaction, reports.bans_text(entries, locale=private_locale(interaction)))

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
            rule = await self.bot.store.settings.add_rule(guild_id, kind.value, checked, actor, now)
        except RuleError as error:
            await reply(interaction, msg("That rule was not added: {error}.", error=error.text))
            return
        await reply(
            interaction,
            msg(
                "Added rule {rule}. Prompts that match it are refused with a neutral message and logged "
                "with the rule.",
                rule=reports.rule_text(rule),
            ),
        )
        await self.log_change(interaction, say.rule_added(rule))

    @blocklist.command(name="remove", description="Remove a prompt rule by its number")
    @app_commands.describe(rule="The rule's number, as `blocklist list` shows it")
    @app_commands.rename(rule="id")
    async def blocklist_remove(
        self, interaction: Interaction, rule: app_commands.Range[int, 1, 2**53]
    ) -> None:
        guild_id = self.gid(interaction)
        removed = await self.bot.store.settings.remove_rule(guild_id, rule, interaction.user.id, self.now())
        if removed is None:
            await reply(
                interaction,
                msg("There is no rule #{id} in this server; see `/imagine-admin blocklist list`.", id=rule),
            )
            return
        await reply(interaction, msg("Removed rule {rule}.", rule=reports.rule_text(removed)))
        await self.log_change(interaction, say.rule_removed(removed))

    @blocklist.command(name="list", description="The server's prompt rules")
    async def blocklist_list(self, interaction: Interaction) -> None:
        await reply(
            interaction,
            reports.rules_text(
                await self.bot.store.settings.rules(self.gid(interaction)), locale=private_locale(interaction)
            ),
        )

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
        before = await self.bot.store.settings.guild_policy(guild_id)
        if channel is None:
            await self.bot.store.settings.update_policy(
                guild_id, actor, now, modlog_channel_id=None, modlog_finished=False
            )
            await reply(interaction, N_("The mod-log is **off**: refusals are no longer posted anywhere."))
            # Said where the mod-log was: the last entry that channel gets.
            if before.modlog_channel_id is not None:
                await self.log_change(interaction, say.modlog_off(), channel_id=before.modlog_channel_id)
            return
        log_finished = before.modlog_finished if finished is None else finished
        await self.bot.store.settings.update_policy(
            guild_id, actor, now, modlog_channel_id=channel.id, modlog_finished=log_finished
        )
        locale = private_locale(interaction)
        if log_finished:
            text = t(
                locale,
                "The mod-log is now {channel}: it gets a short entry for every refusal and every finished "
                "image.",
                channel=channel.mention,
            )
        else:
            text = t(
                locale,
                "The mod-log is now {channel}: it gets a short entry for every refusal.",
                channel=channel.mention,
            )
        me = channel.guild.me
        if me is not None:
            allowed = channel.permissions_for(me)
            if not (allowed.view_channel and allowed.send_messages):
                text += "\n" + t(
                    locale,
                    "⚠️ I cannot post in {channel} yet: give me View Channel and Send Messages there.",
                    channel=channel.mention,
                )
        await reply(interaction, text)
        await self.log_change(interaction, say.modlog_set(channel.id, log_finished))


async def setup(bot: ImagineBotBase) -> None:
    await bot.add_cog(AdminModeration(bot))
