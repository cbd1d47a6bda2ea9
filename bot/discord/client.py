"""The bot class: owns the single aiohttp session, the store and the job runner."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import logging
import secrets
import time
from typing import Any

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.ext import commands

from bot.adapters.image_api import ImageApi
from bot.adapters.safe_fetch import open_session, pooled_connector
from bot.adapters.store import Store, open_store
from bot.adapters.thumbnails import ThumbnailStore
from bot.core.clock import Clock, SystemClock
from bot.core.i18n import N_
from bot.core.image_file import ImageFile
from bot.core.models import Job, JobStatus
from bot.core.runner import DeliveryReceipt, JobRunner, RunnerConfig
from bot.core.texts import Text, msg
from bot.discord.bot_base import ImagineBotBase
from bot.discord.history_view import HISTORY_ITEMS
from bot.discord.image_buttons import IMAGE_ITEMS
from bot.discord.replies import NO_PINGS, say_privately
from bot.discord.sink import DiscordSink
from bot.discord.stopping import admit
from bot.discord.translator import CatalogTranslator
from bot.discord.views import DYNAMIC_ITEMS
from bot.ops import metrics, wiring
from bot.ops.config import Settings
from bot.ops.health import OpsServer
from bot.ops.runner_wiring import build_runner
from bot.web.gallery_server import WebServer

log = logging.getLogger(__name__)

EXTENSIONS = (
    "cogs.imagine",
    "cogs.usage",
    "cogs.queue",
    "cogs.admin_limits",
    "cogs.admin_moderation",
    "cogs.admin_reports",
    "cogs.admin_styles",
    "cogs.admin_gallery",
    "cogs.settings",
    "cogs.reference",
    "cogs.animate",
    "cogs.admin_videos",
)
DATABASE_PING_TIMEOUT = 3.0
REFUSAL_SETTLE = 2.0
# Discord lets a bot IDENTIFY one shard per 5 s (session_start_limit.max_concurrency 1); discord.py waits
# this long before each of a process's shards after its first.
IDENTIFY_INTERVAL = 5.0


def point_discord_at(api_base: str, gateway_url: str) -> None:
    """Send discord.py's REST calls and gateway connection to `api_base` (a proxy, or a test double)."""
    discord.http.Route.BASE = api_base.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


class MeasuredSink(DiscordSink):
    """The Discord sink, timing "task finished → image posted" for /metrics, and keeping a thumbnail of
    each posted image for the web gallery."""

    def __init__(
        self, client: discord.Client, store: Store, clock: Clock, thumbnails: ThumbnailStore
    ) -> None:
        super().__init__(client, store, clock)
        self.thumbnails = thumbnails

    async def deliver(self, job: Job, images: list[ImageFile], elapsed: float) -> DeliveryReceipt:
        receipt = await super().deliver(job, images, elapsed)
        finished = job.finished_at
        if finished is None:  # the runner may hand over the row as it was before completion
            current = await self.store.jobs.get(job.id)
            finished = current.finished_at if current else None
        if finished is not None and receipt.delivery in ("channel", "interaction", "dm"):
            metrics.delivery_delay.observe(max(0.0, self.clock.time() - finished))
        if receipt.message_id is not None or receipt.delivery in ("interaction", "dm"):
            # The web gallery's thumbnails, made in the background: never a delay or a failure here.
            try:
                self.thumbnails.keep_soon(job.id, [image.data for image in images])
            except Exception:
                log.warning("job %s: could not start making its thumbnails", job.id, exc_info=True)
        return receipt


class FriendlyTree(app_commands.CommandTree["ImagineBot"]):
    """One place that turns any command error into a short, friendly, private reply."""

    async def interaction_check(self, interaction: discord.Interaction[ImagineBot], /) -> bool:
        """Commands, context menus and autocomplete; buttons and dialogs check in bot/discord/views.py."""
        return await admit(interaction)

    async def on_error(
        self, interaction: discord.Interaction[ImagineBot], error: app_commands.AppCommandError
    ) -> None:
        text: Text | str
        if isinstance(error, app_commands.NoPrivateMessage):
            text = N_("This command works in a server channel, not in DMs.")
        elif isinstance(error, app_commands.CheckFailure):
            text = str(error) or N_("You cannot use this command here.")
        elif isinstance(error, app_commands.TransformerError):
            text = N_("One of the options was not understood. Please check it and try again.")
        else:
            reference = secrets.token_hex(4)
            command = interaction.command.qualified_name if interaction.command else "?"
            log.error("command %s failed (ref %s)", command, reference, exc_info=error)
            text = msg(
                "Something went wrong on our side. Please try again; if it keeps happening, "
                "tell a moderator (ref {reference}).",
                reference=f"`{reference}`",
            )
        try:
            await say_privately(interaction, text)
        except discord.HTTPException:
            log.warning("could not tell the member about an error", exc_info=True)


class ImagineBot(ImagineBotBase):
    """Runs the shards SHARD_IDS of SHARD_COUNT, or every shard Discord recommends when they are unset.

    Nothing but the gateway depends on the shard: interactions are answered and jobs delivered through
    REST with the interaction token kept in the job row, so any process may finish any job."""

    session: aiohttp.ClientSession
    store: Store
    api: ImageApi
    runner: JobRunner
    sink: DiscordSink
    thumbnails: ThumbnailStore

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        runner_config: RunnerConfig | None = None,
        store: Store | None = None,
        identify_interval: float = IDENTIFY_INTERVAL,
        **client_options: Any,
    ) -> None:
        intents = discord.Intents.none()
        intents.guilds = True  # channels and the upload limit of each guild; nothing privileged
        if settings.shard_count is not None:
            client_options.setdefault("shard_count", settings.shard_count)
        if settings.shard_ids is not None:
            client_options.setdefault("shard_ids", list(settings.shard_ids))
        # discord.py's own session resolves names on the DNS pool too, not in asyncio's default executor.
        client_options.setdefault("connector", pooled_connector(limit=0))
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
        # The store the entry point opened (bot.discord.launch): the bot owns it from here and closes
        # it as it stops. Without one (tests), setup_hook opens it.
        if store is not None:
            self.store = store
        self.identify_interval = identify_interval
        self.stopping = False
        self.ops_server: OpsServer | None = None
        self.web_server: WebServer | None = None
        self._lag_task: asyncio.Task[None] | None = None
        self._close_task: asyncio.Future[None] | None = None
        self._finished_counted: dict[str, int] = {}  # the runner's tally already added to /metrics

    def runner_config(self) -> RunnerConfig:
        if self._runner_config is not None:
            return self._runner_config
        return wiring.runner_config(self.settings)

    async def setup_hook(self) -> None:
        s = self.settings
        # Its connector resolves names to public addresses only (bot/safe_fetch.py), except the API's.
        self.session = open_session(
            wiring.fetch_policy(s),
            total_timeout=s.request_timeout * 2,
            trace_configs=[metrics.api_trace_config(s.base_url)],
        )
        if not hasattr(self, "store"):
            self.store = await open_store(s)
        self._refusals_counted_to = self.clock.time()
        if s.metrics_port is not None:
            self.ops_server = OpsServer(
                s.metrics_host, s.metrics_port, self.health_problems, self.refresh_metrics
            )
            await self.ops_server.start()
            self._lag_task = metrics.start_loop_lag_watch()
        if s.web_port is not None:  # the web gallery, on this process's store (docs/web.md)
            self.web_server = WebServer(s, self.store)
            await self.web_server.start()
        self.thumbnails = ThumbnailStore(s.thumbnail_path)
        self.api = wiring.image_api(s, self.session)
        self.sink = MeasuredSink(self, self.store, self.clock, self.thumbnails)
        self.runner = build_runner(
            self.store,
            self.api,
            self.session,
            self.sink,
            self.runner_config(),
            schedule=wiring.poll_schedule(s),
            clock=self.clock,
        )
        # Command names and descriptions in every shipped language (bot/locales), before the sync.
        await self.tree.set_translator(CatalogTranslator())
        # Buttons are matched by their custom_id template: they keep working after a restart.
        self.add_dynamic_items(*DYNAMIC_ITEMS, *HISTORY_ITEMS, *IMAGE_ITEMS)
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        if s.syncs_commands:
            await self.sync_commands()
        else:
            log.info("not syncing commands: the process running shard 0 does that")
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
        # With the translations: a changed catalog is a change Discord must be told about.
        translator = self.tree.translator
        payload = [
            await command.get_translated_payload(self.tree, translator)
            if translator is not None
            else command.to_dict(self.tree)
            for command in self.tree.get_commands()
        ]
        # The application id is part of the digest: a new token for another app must sync again.
        marker = json.dumps([self.application_id, payload], sort_keys=True)
        digest = hashlib.sha256(marker.encode()).hexdigest()
        if await self.store.ops.get_meta("commands_digest") == digest:
            log.info("commands unchanged since the last global sync; not syncing")
            return
        synced = await self.tree.sync()
        await self.store.ops.set_meta("commands_digest", digest)
        log.info("synced %s commands globally (they can take a while to appear)", len(synced))

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        if not initial:
            await asyncio.sleep(self.identify_interval)

    async def on_ready(self) -> None:
        assert self.user is not None
        log.info(
            "logged in as %s (%s) in %s servers, shards %s of %s",
            self.user,
            self.user.id,
            len(self.guilds),
            ",".join(str(shard) for shard in sorted(self.shards)) or "-",
            self.shard_count,
        )

    # -- operators ---------------------------------------------------------------------------------

    async def health_problems(self) -> dict[str, str]:
        """What /healthz reports: empty when the gateway, the database and the poll loop are all fine."""
        problems: dict[str, str] = {}
        if self.stopping:
            problems["bot"] = "stopping"
        shards = self.shards
        down = sorted(shard_id for shard_id, shard in shards.items() if shard.is_closed())
        if self.is_closed() or not shards or not self.is_ready():
            problems["gateway"] = "not connected to Discord"
        elif down:
            which = ", ".join(map(str, down))
            problems["gateway"] = f"shard{'s' if len(down) > 1 else ''} {which} not connected to Discord"
        try:
            await asyncio.wait_for(self.store.ops.ping(), DATABASE_PING_TIMEOUT)
        except TimeoutError:
            problems["database"] = f"no answer within {DATABASE_PING_TIMEOUT:g} s"
        except Exception as error:  # noqa: BLE001 - any failed ping (SQLite, a lost PostgreSQL server) is the answer
            problems["database"] = f"error: {type(error).__name__}"
        runner: JobRunner | None = getattr(self, "runner", None)  # None while start-up is under way
        ran_at = getattr(runner, "loop_ran_at", None)
        if runner is None or ran_at is None:
            problems["poll_loop"] = "has not started yet"
        elif (quiet := time.monotonic() - ran_at) > max(60.0, 3 * runner.config.idle_wait):
            problems["poll_loop"] = f"last ran {quiet:.0f} s ago"
        return problems

    async def refresh_metrics(self) -> None:
        """Scrape-time figures: the database's jobs by state and refusals, discord.py's latencies."""
        metrics.set_gateway_latencies(self.latencies)  # one (shard id, seconds) per shard of this process
        runner: JobRunner | None = getattr(self, "runner", None)
        if runner is None:
            return
        busy = len(getattr(runner, "_submits", ())) + len(getattr(runner, "_workers", ()))
        metrics.jobs_in_flight.set(busy)
        metrics.add_finished(runner.finished, self._finished_counted)
        # The jobs table and the usage log are shared by every process: only the one running shard 0
        # exports what they hold, so that a sum over processes counts each job and refusal once.
        if not self.settings.syncs_commands:
            return
        states = [status.value for status in JobStatus if not status.is_final]
        metrics.set_jobs_by_state(await self.store.ops.unfinished_by_status(runner.source), states)
        # Refusals logged since the previous scrape, counted once each; the newest seconds wait for the
        # next scrape so a row committed just after this read is not skipped.
        until = self.clock.time() - REFUSAL_SETTLE
        if until > self._refusals_counted_to:
            metrics.add_refusals(await self.store.ops.refusals_between(self._refusals_counted_to, until))
            self._refusals_counted_to = until

    async def close(self) -> None:
        """Stop in the order that loses nothing: refuse new work, let writes and in-flight deliveries
        finish, release the jobs this process was polling (another process, or the next start, takes
        them at once), then close the gateway, the session, the database and the endpoint."""
        if self._close_task is None:
            self._close_task = asyncio.ensure_future(self._close_once())
        # Shielded: a second close (a second signal, `async with` leaving) waits for the first.
        await asyncio.shield(self._close_task)

    async def _close_once(self) -> None:
        self.stopping = True
        if hasattr(self, "runner"):
            await self.runner.stop()
            if self.store.exclusive:
                # SQLite: this process is the database's only user, so every running job of the bot is
                # made due at once for the next start. (With PostgreSQL the store releases what this
                # process holds as it closes, below: one release either way.)
                try:
                    await self.store.jobs.reset_leases(self.runner.source, self.clock.time())
                except Exception:
                    log.warning("could not release the leases of running jobs", exc_info=True)
        await super().close()
        if self.web_server is not None:
            await self.web_server.stop()
        if hasattr(self, "thumbnails"):
            await self.thumbnails.settle()
        if hasattr(self, "session"):
            await self.session.close()
        if hasattr(self, "store"):
            await self.store.close()
        await metrics.stop_task(self._lag_task)
        if self.ops_server is not None:
            await self.ops_server.stop()
