"""The bot class: owns the single aiohttp session, the store and the job runner."""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import secrets
from typing import Any

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from bot.api import ImageApi
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.discord_sink import DiscordSink
from bot.jobs import JobRunner, RunnerConfig
from bot.store import Store
from cogs.common import NO_PINGS, say_privately
from cogs.components import DYNAMIC_ITEMS

log = logging.getLogger(__name__)

EXTENSIONS = ("cogs.imagine", "cogs.usage", "cogs.admin", "cogs.queue")


class FriendlyTree(app_commands.CommandTree["ImagineBot"]):
    """One place that turns any command error into a short, friendly, private reply."""

    async def on_error(
        self, interaction: discord.Interaction[ImagineBot], error: app_commands.AppCommandError
    ) -> None:
        if isinstance(error, app_commands.NoPrivateMessage):
            text = "This command works in a server channel, not in DMs."
        elif isinstance(error, app_commands.CheckFailure):
            text = str(error) or "You cannot use this command here."
        elif isinstance(error, app_commands.TransformerError):
            text = "One of the options was not understood. Please check it and try again."
        else:
            reference = secrets.token_hex(4)
            command = interaction.command.qualified_name if interaction.command else "?"
            log.error("command %s failed (ref %s)", command, reference, exc_info=error)
            text = (
                "Something went wrong on our side. Please try again; if it keeps happening, "
                f"tell a moderator (ref `{reference}`)."
            )
        try:
            await say_privately(interaction, text)
        except discord.HTTPException:
            log.warning("could not tell the member about an error", exc_info=True)


class ImagineBot(commands.Bot):
    session: aiohttp.ClientSession
    store: Store
    api: ImageApi
    runner: JobRunner
    sink: DiscordSink

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        runner_config: RunnerConfig | None = None,
        **client_options: Any,
    ) -> None:
        intents = discord.Intents.none()
        intents.guilds = True  # channels and the upload limit of each guild; nothing privileged
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            allowed_mentions=NO_PINGS,
            tree_cls=FriendlyTree,
            help_command=None,
            **client_options,
        )
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self._runner_config = runner_config

    def runner_config(self) -> RunnerConfig:
        if self._runner_config is not None:
            return self._runner_config
        s = self.settings
        return RunnerConfig(
            time_limit=s.job_time_limit,
            concurrency=s.poll_concurrency,
            outage_queue_limit=s.outage_queue_limit,
            max_result_bytes=s.max_result_bytes,
            status_update_interval=s.status_update_interval,
        )

    async def setup_hook(self) -> None:
        s = self.settings
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=s.request_timeout * 2))
        self.store = await Store.open(s.database_path)
        self.api = ImageApi(self.session, s.base_url, s.api_key.reveal(), s.model, timeout=s.request_timeout)
        self.sink = DiscordSink(self)
        self.runner = JobRunner(
            self.store,
            self.api,
            self.session,
            self.sink,
            self.runner_config(),
            schedule=s.poll_schedule(),
            clock=self.clock,
        )
        # Buttons are matched by their custom_id template: they keep working after a restart.
        self.add_dynamic_items(*DYNAMIC_ITEMS)
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        await self.sync_commands()
        await self.runner.start()
        # Everything built so far lives as long as the process: keep the collector from walking it
        # again and again (full collections were the largest pauses in the acknowledgement benchmark).
        gc.freeze()

    async def sync_commands(self) -> None:
        """Sync to the dev guild on every start (instant), globally only when the commands changed."""
        if self.settings.dev_guild_id is not None:
            guild = discord.Object(id=self.settings.dev_guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("synced %s commands to the dev guild %s", len(synced), guild.id)
            return
        payload = [command.to_dict(self.tree) for command in self.tree.get_commands()]
        # The application id is part of the digest: a new token for another app must sync again.
        marker = json.dumps([self.application_id, payload], sort_keys=True)
        digest = hashlib.sha256(marker.encode()).hexdigest()
        if await self.store.get_meta("commands_digest") == digest:
            log.info("commands unchanged since the last global sync; not syncing")
            return
        synced = await self.tree.sync()
        await self.store.set_meta("commands_digest", digest)
        log.info("synced %s commands globally (they can take a while to appear)", len(synced))

    async def on_ready(self) -> None:
        assert self.user is not None
        log.info("logged in as %s (%s) in %s servers", self.user, self.user.id, len(self.guilds))

    async def close(self) -> None:
        if hasattr(self, "runner"):
            await self.runner.stop()
        await super().close()
        if hasattr(self, "session"):
            await self.session.close()
        if hasattr(self, "store"):
            await self.store.close()
