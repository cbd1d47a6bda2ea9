"""/queue and /history: where my requests are, and my earlier images."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.adapters.store.jobs_repo import MAX_REQUEST_SIZE
from bot.core import messages
from bot.core.i18n import N_, t
from bot.core.models import Job
from bot.core.request_texts import request_queue_line
from bot.discord.checks import is_moderator
from bot.discord.history_view import history_page
from bot.discord.places import server_of
from bot.discord.replies import NO_PINGS, private_locale, say_privately
from bot.discord.views import CancelButton

if TYPE_CHECKING:
    from bot.discord.bot_base import ImagineBotBase

MAX_LISTED = 20  # a message holds at most 25 buttons; keep room and a readable length


class Queue(commands.Cog):
    def __init__(self, bot: ImagineBotBase) -> None:
        self.bot = bot

    @app_commands.command(name="queue", description="See your images in progress (and cancel them)")
    @app_commands.allowed_installs(guilds=True, users=True)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.rename(everyone="all")
    @app_commands.describe(everyone="Moderators: show every request in progress in this server")
    async def queue(self, interaction: discord.Interaction[ImagineBotBase], everyone: bool = False) -> None:
        server = server_of(interaction)  # None: personal use, the member's own jobs from every such place
        if everyone and not is_moderator(interaction):
            await say_privately(
                interaction,
                N_("Only moderators (Manage Messages or Manage Server) can see everyone's requests."),
            )
            return
        locale = private_locale(interaction)
        user_id = None if everyone else interaction.user.id
        # One entry per request: a request of several images lists each image's state.
        jobs = await self.bot.store.jobs.unfinished(server, user_id, MAX_LISTED * MAX_REQUEST_SIZE + 1)
        if not jobs:
            text = (
                N_("Nothing is in progress in this server.")
                if everyone
                else N_("You have nothing in progress.")
            )
            await say_privately(interaction, text)
            return
        groups: dict[int, list[Job]] = {}
        for job in jobs:
            groups.setdefault(job.request, []).append(job)
        listed = list(groups.values())[:MAX_LISTED]
        now = self.bot.clock.time()
        lines = []
        view = discord.ui.View(timeout=None)
        for group in listed:
            job = group[0]
            if job.request_size > 1:
                whole = await self.bot.store.jobs.of_request(job.request)
                lines.append(request_queue_line(whole, now - job.created_at, locale))
            else:
                typical = self.bot.runner.typical_duration(job.kind)
                lines.append(messages.queue_line(job, now - job.created_at, typical, locale))
            # Cancelling any image of a request cancels every one of it not finished.
            view.add_item(CancelButton(job.id, label=t(locale, "Cancel #{id}", id=job.request)))
        if len(groups) > MAX_LISTED:
            lines.append(t(locale, "…and more; the oldest {count} are shown.", count=MAX_LISTED))
        header = (
            t(locale, "⏱️ In progress in this server:")
            if everyone
            else t(locale, "⏱️ Your requests in progress:")
        )
        await interaction.response.send_message(
            messages.clip("\n".join([header, *lines])), view=view, ephemeral=True, allowed_mentions=NO_PINGS
        )

    @app_commands.command(name="history", description="Your earlier images, with links and Post again")
    @app_commands.allowed_installs(guilds=True, users=True)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.describe(member="Moderators: whose images to show")
    async def history(
        self, interaction: discord.Interaction[ImagineBotBase], member: discord.Member | None = None
    ) -> None:
        target = member or interaction.user
        if target.id != interaction.user.id and not is_moderator(interaction):
            await say_privately(
                interaction,
                N_("Only moderators (Manage Messages or Manage Server) can see another member's images."),
            )
            return
        content, view = await history_page(
            self.bot,
            server_of(interaction),
            target.id,
            0,
            locale=private_locale(interaction),
            viewer_id=interaction.user.id,
        )
        await interaction.response.send_message(content, view=view, ephemeral=True, allowed_mentions=NO_PINGS)


async def setup(bot: ImagineBotBase) -> None:
    await bot.add_cog(Queue(bot))
