"""Where the core meets discord.py: turns job progress and outcomes into Discord messages.

A finished job becomes a parcel; the planner (bot/discord/route_planner.py) names the routes to try in
order, and one loop tries them. Before each send the intent is written per image (the `deliveries`
table), so that after a crash, a take-over by another process or a refused record, the next attempt
looks on that route first and never sends an image twice.
"""

from __future__ import annotations

import itertools
import logging

import discord

from bot.adapters.media import fit_to_limit_in_pool
from bot.adapters.store import Store, StoreError
from bot.adapters.store.deliveries_repo import REFUSED, SENDING, SENT, TOLD, UNCONFIRMED, Delivery
from bot.core import messages
from bot.core.clock import Clock
from bot.core.i18n import N_, t
from bot.core.image_file import ImageFile
from bot.core.models import Job, JobStatus, Stage
from bot.core.request_texts import request_cancelled_text
from bot.core.runner import UNDELIVERABLE, DeliveryReceipt
from bot.core.texts import Text, msg, stored
from bot.discord.delivery_routes import (
    BY_KIND,
    CHANNEL,
    STATUS,
    CannotTell,
    Parcel,
    Route,
    Sent,
    SinkBot,
    Unavailable,
    Upload,
    edit_status,
    interaction_webhook,
    jump_url,
    public_language,
    send_dm,
)
from bot.discord.rate_limit import RateLimiter
from bot.discord.replies import NO_PINGS
from bot.discord.request_message import RequestMessages, find_carrying
from bot.discord.route_planner import image_routes, notice_routes
from bot.discord.video_delivery import upload_limit, video_parcel
from bot.discord.views import status_view

log = logging.getLogger(__name__)

DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024
MAX_FILES = 10  # Discord's limit of attachments per message
MODLOG_THROTTLE = 60.0
MAY_NOT_HAVE_ARRIVED = N_(
    "Your image for request #{id} may not have reached you: the bot was interrupted while sending it, and "
    "Discord cannot show whether it arrived. It was not sent again, so that nobody else sees it. "
    "/history can send it to you again."
)


class DiscordSink:
    """Delivers job outcomes on Discord by the routes the planner names, each at most once."""

    def __init__(self, client: discord.Client, store: Store, clock: Clock) -> None:
        self.bot = SinkBot(client, store, clock)
        self.store = store
        self.clock = clock
        self.modlog_throttle = RateLimiter(clock, MODLOG_THROTTLE)
        self.requests = RequestMessages(self.bot, self._try_routes)

    def _token_ok(self, job: Job) -> bool:
        return job.message_id is not None and job.token_usable(self.clock.time())

    # -- the status message -------------------------------------------------------------------------

    async def progress(self, job: Job, stage: Stage, elapsed: float, typical: float | None) -> None:
        if not self._token_ok(job):
            return  # after 15 minutes the status message can no longer be edited; the result still comes
        if job.request_size > 1:
            # A request of several images: its first job speaks for it on the status message, until
            # the request's message exists (which may be the status message itself).
            if job.request_index > 1:
                return
            placed = await self.store.deliveries.message(job.request)
            if placed is not None and placed.message_id is not None:
                return
        locale = public_language(job)
        try:
            await edit_status(
                self.bot,
                job,
                messages.status_text(job, stage, elapsed, typical, locale=locale),
                view=status_view(job.id, locale),
            )
        except (discord.NotFound, discord.Forbidden) as exc:
            # The status message was deleted, or the token revoked: the result is still delivered.
            log.info("job %s: status message not editable (%s)", job.id, exc.status)

    async def show_cancelled(self, job: Job, text: str) -> None:
        """A job cancelled from elsewhere (e.g. /queue): its status message says so and loses its button."""
        if job.request_size > 1:
            # The request's message says which images were cancelled; the status message says how many.
            await self.requests.refresh(job)
            placed = await self.store.deliveries.message(job.request)
            if placed is not None and placed.route == "status":
                return  # the status message is the request's message: the refresh said it all
            jobs = await self.store.jobs.of_request(job.request)
            stopped = [j for j in jobs if j.status is JobStatus.CANCELLED]
            editor = job if self._token_ok(job) else next((j for j in jobs if self._token_ok(j)), None)
            if editor is None or not stopped:
                return
            by = job.cancelled_by or job.user_id or 0
            text = request_cancelled_text(
                jobs, by, len(stopped), self.clock.time() - jobs[0].created_at, locale=public_language(job)
            )
            job = editor
        if not self._token_ok(job):
            return
        try:
            await edit_status(self.bot, job, text)
        except discord.HTTPException as exc:
            log.info("job %s: could not mark the status message cancelled (%s)", job.id, exc.status)

    # -- outcomes -----------------------------------------------------------------------------------

    async def deliver(self, job: Job, images: list[ImageFile], elapsed: float) -> DeliveryReceipt:
        await self.bot.client.wait_until_ready()
        earlier, _ = await self._resume(job)
        if earlier is not None:
            return earlier
        if job.media == "video":
            # Its own way to Discord (bot/discord/video_delivery.py): uploaded, re-encoded to fit, or
            # refused with what the member can do (VideoRefused: the runner fails it, refunded).
            limit = upload_limit(self.bot.client, job, DEFAULT_UPLOAD_LIMIT)
            video = await video_parcel(job, images[0], elapsed, limit)
            return await self._try(video, image_routes(job, self.clock.time()))
        parcel = await self._prepare(job, images, elapsed)
        if parcel is None:
            # Each image's error is member-safe text (details of the host went to the log only).
            why = next((image.error for image in images if image.error), None)
            if why:
                return await self.fail(job, stored(msg("The image could not be downloaded: {why}.", why=why)))
            failed = msg("The image could not be downloaded from the image service.")
            return await self.fail(job, stored(failed))
        if job.request_size > 1:
            shown = await self.requests.show(job, parcel)
            if shown is not None:
                return shown
            # The request's message cannot take it (deleted, or its token expired): a message of its own.
        return await self._try(parcel, image_routes(job, self.clock.time()))

    async def fail(self, job: Job, reason: str) -> DeliveryReceipt:
        await self.bot.client.wait_until_ready()
        if job.request_size > 1:
            # The request's message says which image failed and why (the job's stored reason).
            job.error = job.error or reason
            shown = await self.requests.show(job, None)
            if shown is not None:
                return shown
        content = messages.failure_text(job, reason, public_language(job))
        parcel = Parcel(job, content, content, 0.0, failure=True)
        return await self._try(parcel, notice_routes(job, self.clock.time()))

    async def find_delivery(self, job: Job) -> DeliveryReceipt | None:
        """After a restart or a take-over: the delivery an earlier process made (or may have made) for
        this job. A job delivered before deliveries were recorded is looked for in the channel and the
        status message."""
        await self.bot.client.wait_until_ready()
        earlier, recorded = await self._resume(job)
        if earlier is not None or recorded or job.request_size > 1:
            # A request of several images records every intent: nothing recorded, nothing sent. (A reply
            # to the status message may be the request's message without this job's image.)
            return earlier
        for route in [STATUS] if job.is_personal else [CHANNEL, STATUS]:
            try:
                found = await route.find(self.bot, job)
            except CannotTell:
                continue
            if found is not None:
                return found
        return None

    async def _prepare(self, job: Job, images: list[ImageFile], elapsed: float) -> Parcel | None:
        """The images fitted to the upload limit, and links for those that cannot be uploaded. None when
        there is nothing to show at all."""
        guild = self.bot.client.get_guild(job.guild_id) if job.guild_id else None
        limit = guild.filesize_limit if guild is not None else DEFAULT_UPLOAD_LIMIT
        uploads: list[Upload] = []
        links: list[tuple[str, Text]] = []
        for index, image in enumerate(images, start=1):
            if len(uploads) >= MAX_FILES:
                if image.url:
                    links.append((image.url, msg("more images than one message can hold")))
                continue
            if image.data is None:
                if image.url:
                    links.append((image.url, image.error or msg("download failed")))
                continue
            # Pillow work is CPU-bound: keep it off the event loop.
            # Pillow work is CPU-bound: off the event loop, on the image pool.
            fitted = await fit_to_limit_in_pool(image.data, image.content_type, limit)
            if fitted is None:
                if image.url:
                    links.append((image.url, msg("too large to upload here")))
                continue
            extension = "jpg" if fitted.content_type == "image/jpeg" else image.extension
            uploads.append(Upload(index, f"imagine-{job.id}-{index}.{extension}", fitted.data))
        if not uploads and not links:
            return None
        count = len(uploads) or len(images)
        return Parcel(
            job,
            public_text=messages.result_text(job, elapsed, count, links, locale=public_language(job)),
            # Read by the requester alone (a private delivery): in their language, not the server's.
            private_text=messages.result_text(job, elapsed, count, links, locale=job.locale),
            elapsed=elapsed,
            uploads=uploads,
            indexes=list(range(1, len(images) + 1)),
        )

    # -- the one loop -------------------------------------------------------------------------------

    async def _try(self, parcel: Parcel, routes: list[Route]) -> DeliveryReceipt:
        receipt, _ = await self._try_routes(parcel, routes)
        return receipt

    async def _try_routes(self, parcel: Parcel, routes: list[Route]) -> tuple[DeliveryReceipt, Route | None]:
        """Each route in turn until one takes the parcel. The intent is written before each send; a route
        Discord refused (4xx) is marked so and the next is tried. Any other error leaves the intent in
        place and propagates: whether it arrived is looked up before anything is sent again. Returns
        the receipt and the route that took it (None: none did)."""
        job = parcel.job
        for route in routes:
            if parcel.indexes and not await self.store.deliveries.intend(
                job.id, parcel.indexes, route.kind, self.clock.time()
            ):
                raise RuntimeError(f"job {job.id}: another delivery is under way")
            try:
                sent = await route.send(self.bot, parcel)
            except Unavailable:
                await self._settle(parcel, REFUSED)
                continue
            except discord.HTTPException as exc:
                if exc.status >= 500:
                    raise
                log.warning(
                    "job %s: the %s route refused it (%s %s)", job.id, route.kind, exc.status, exc.code
                )
                await self._settle(parcel, REFUSED)
                continue
            await self._record_sent(parcel, route, sent)
            await self._after(parcel, route, sent)
            return sent.receipt, route
        log.warning("job %s: no route could take its outcome", job.id)
        return DeliveryReceipt(UNDELIVERABLE), None

    async def _after(self, parcel: Parcel, route: Route, sent: Sent) -> None:
        """What follows a recorded delivery: the status message points at it, the mod-log notes it."""
        await route.after(self.bot, parcel, sent)
        if route is CHANNEL and not parcel.failure:
            await self._modlog_finished(parcel.job, sent.jump_url)

    async def _record_sent(self, parcel: Parcel, route: Route, sent: Sent) -> None:
        """Discord accepted the parcel: record where it is. If the database refuses, the receipt still
        goes to the runner (which records the job, with retries of its own); should that fail too, the
        intent left in place makes the next attempt look on `route` before sending anything."""
        try:
            await self._settle(parcel, SENT, sent.receipt)
        except StoreError as exc:
            log.warning("job %s: could not record its %s delivery (%s)", parcel.job.id, route.kind, exc)

    async def _settle(self, parcel: Parcel, state: str, receipt: DeliveryReceipt | None = None) -> None:
        if parcel.indexes:
            await self.store.deliveries.settle(
                parcel.job.id,
                parcel.indexes,
                state,
                self.clock.time(),
                message_id=receipt.message_id if receipt else None,
                channel_id=receipt.channel_id if receipt else None,
            )

    # -- after a crash ------------------------------------------------------------------------------

    async def _resume(self, job: Job) -> tuple[DeliveryReceipt | None, bool]:
        """What the recorded deliveries say: a receipt when the images are (or may be) with the requester,
        None when nothing arrived; and whether anything was recorded at all. Images whose send was cut
        off are looked for on their route first."""
        rows = await self.store.deliveries.of(job.id)
        if not rows:
            return None, False
        sending = [r for r in rows if r.state == SENDING]
        for kind, group in itertools.groupby(sending, key=lambda r: r.route):
            await self._look_for(job, BY_KIND[kind], [r.image_index for r in group])
        if sending:
            rows = await self.store.deliveries.of(job.id)
        sent = [r for r in rows if r.state == SENT]
        if sent:
            first = sent[0]
            return DeliveryReceipt(BY_KIND[first.route].delivery, first.message_id, first.channel_id), True
        unsure = [r for r in rows if r.state in (UNCONFIRMED, TOLD)]
        if unsure:
            await self._tell_unconfirmed(job, [r for r in unsure if r.state == UNCONFIRMED])
            # Recorded where the requester can find it: /history sends it to them again.
            return DeliveryReceipt(BY_KIND[unsure[0].route].delivery, job.message_id, job.channel_id), True
        return None, True

    async def _look_for(self, job: Job, route: Route, indexes: list[int]) -> None:
        now = self.clock.time()
        try:
            if job.request_size > 1:
                # In the request's message (by id, when it is recorded), by the job's own files.
                placed = await self.requests.placed(job)
                found = await find_carrying(self.bot, job, route.kind, placed)
            else:
                found = await route.find(self.bot, job)
        except CannotTell:
            log.warning(
                "job %s: cannot tell whether its %s delivery arrived; not sending it again",
                job.id,
                route.kind,
            )
            await self.store.deliveries.settle(job.id, indexes, UNCONFIRMED, now)
            return
        if found is None:
            log.info("job %s: its %s delivery did not arrive; delivering again", job.id, route.kind)
            await self.store.deliveries.settle(job.id, indexes, REFUSED, now)
            return
        log.info(
            "job %s: found its %s delivery (message %s); recording it", job.id, route.kind, found.message_id
        )
        await self.store.deliveries.settle(
            job.id, indexes, SENT, now, message_id=found.message_id, channel_id=found.channel_id
        )
        if job.request_size > 1:
            # The edit got in, but its process died before the message's text said so: say it now.
            await self.requests.refresh(job)
            return
        # The earlier process died before the status message pointed at it.
        elapsed = (job.finished_at or now) - job.created_at
        url = jump_url(job.guild_id, found.channel_id or job.channel_id, found.message_id)
        await self._after(Parcel(job, "", "", elapsed), route, Sent(found, url))

    async def _tell_unconfirmed(self, job: Job, unconfirmed: list[Delivery]) -> None:
        """Tell the requester privately, once, that the image may not have reached them. Marked as told
        before it is sent: a crash in between costs the note, never a second one."""
        indexes = [r.image_index for r in unconfirmed]
        if not indexes or not await self.store.deliveries.settle(
            job.id, indexes, TOLD, self.clock.time(), was=(UNCONFIRMED,)
        ):
            return
        text = messages.clip(t(job.locale, MAY_NOT_HAVE_ARRIVED, id=job.id))
        try:
            if job.token_usable(self.clock.time()) and (
                not job.is_personal or await self.store.jobs.use_followup(job.id)
            ):
                await interaction_webhook(self.bot, job).send(
                    text, ephemeral=True, wait=True, allowed_mentions=NO_PINGS
                )
            elif job.user_id is not None:
                await send_dm(self.bot, job, text, [], nonce=f"imagine-{job.id}-note")
        except discord.HTTPException as exc:
            log.warning(
                "job %s: could not tell the requester its image may be missing (%s)", job.id, exc.status
            )

    # -- the mod-log --------------------------------------------------------------------------------

    async def modlog(
        self,
        guild_id: int | None,
        text: str,
        *,
        throttle: tuple[object, ...] | None = None,
        channel_id: int | None = None,
    ) -> None:
        """Post a short entry in the guild's mod-log channel, if it has one. Never raises.

        With `throttle`, entries with the same key come at most once a minute: a member hammering
        /imagine while refused must not flood the channel (every refusal is in the usage log anyway).
        `channel_id` names the channel instead of the server's setting: the mod-log being turned off
        says so in the channel it leaves."""
        if guild_id is None:
            return
        if throttle is not None and self.modlog_throttle.wait_needed((guild_id, *throttle)) > 0:
            return
        try:
            if channel_id is None:
                channel_id = (await self.store.settings.guild_policy(guild_id)).modlog_channel_id
            if channel_id is None:
                return
            channel = self.bot.client.get_partial_messageable(channel_id, guild_id=guild_id)
            await channel.send(messages.clip(text), allowed_mentions=NO_PINGS)
        except discord.HTTPException as exc:
            log.warning("guild %s: cannot post in the mod-log channel (%s)", guild_id, exc.status)
        except StoreError as exc:
            log.warning(
                "guild %s: mod-log entry not posted, its channel could not be read (%s)", guild_id, exc
            )

    async def _modlog_finished(self, job: Job, jump_url: str) -> None:
        if job.guild_id is None:
            return
        policy = await self.store.settings.guild_policy(job.guild_id)
        if policy.modlog_finished:
            await self.modlog(job.guild_id, messages.modlog_finished(job, jump_url, job.guild_locale))
