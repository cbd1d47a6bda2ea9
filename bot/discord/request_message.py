"""A request of several images in one message: each image added as it finishes, in the request's order.

The first outcome of the request (an image, or a failure) creates the message on the routes the planner
names for that job; every later one edits it, keeping the attachments already there by id and adding its
own. Edits are serialised across processes by a claim on the request's row in `deliveries`
(`claim_message`): the holder reads every job of the request from the store and the message as Discord
has it now, and composes the whole edit from them (text, attachments in order 1..N, buttons). So two
images finishing at the same moment in two processes both end in the message: the second waits for the
first's edit and composes on top of it. A claim, not a database lock held across the edit: Discord's
round trip must not hold a pooled connection (nor SQLite's one writer), and a claim kept in the row
expires with the store's lease when its holder is killed.

As for a single image, the intent is written per image before each send or edit, and after a crash the
message itself says whether the image got in (its attachments carry the job's file names)."""

from __future__ import annotations

import asyncio
import collections
import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import discord

from bot.adapters.store.deliveries_repo import REFUSED, SENDING, SENT, RequestMessage
from bot.core.models import Job
from bot.core.request_texts import RENDERING, SHOWN, image_states, request_pointer, request_text
from bot.core.runner import UNDELIVERABLE, DeliveryReceipt
from bot.discord.delivery_routes import (
    BY_KIND,
    CannotTell,
    Parcel,
    Route,
    SinkBot,
    TokenGone,
    carries_images,
    edit_on_route,
    edit_status_quietly,
    fetch_on_route,
    jump_url,
    marker,
    public_language,
)
from bot.discord.image_buttons import request_view
from bot.discord.route_planner import image_routes

log = logging.getLogger(__name__)

MAX_FILES = 10  # Discord's limit of attachments per message
CLAIM_WAIT_FIRST = 0.02  # seconds between two tries for a held claim, growing to CLAIM_WAIT_MOST
CLAIM_WAIT_MOST = 0.25
LEFT_KEPT = 1000  # requests whose message this process remembers as it left it

TryRoutes = Callable[[Parcel, list[Route]], Awaitable[tuple[DeliveryReceipt, Route | None]]]


class RequestMessages:
    """Composes the one message of each request of several images; `try_routes` is the sink's loop
    over the planner's routes (intent, send, record), used to create a message."""

    def __init__(self, bot: SinkBot, try_routes: TryRoutes) -> None:
        self.bot = bot
        self.try_routes = try_routes
        # Within a process, compositions of one request wait here rather than polling the claim.
        self._local: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()
        # The message as this process's last edit left it, and when it let the claim go then: if the
        # claim's row says it was let go at that time, no other process has edited it since, and the
        # edit needs no fresh look at the message (one round trip to Discord less per image).
        self._left: collections.OrderedDict[int, Left] = collections.OrderedDict()
        # The message as each composition under way sees it, by request (one at a time per request).
        self._current: dict[int, discord.Message] = {}

    # -- the claim --------------------------------------------------------------------------------------

    async def _claim(self, request_id: int) -> RequestMessage:
        store, pause = self.bot.store, CLAIM_WAIT_FIRST
        while True:
            claim = await store.deliveries.claim_message(request_id, self.bot.clock.time())
            if claim is not None:
                return claim
            await asyncio.sleep(pause)
            pause = min(pause * 2, CLAIM_WAIT_MOST)

    async def _holding(
        self, job: Job, compose: Callable[[RequestMessage], Awaitable[tuple[DeliveryReceipt | None, Placed]]]
    ) -> DeliveryReceipt | None:
        """Run `compose` holding the request's claim, and let it go with where the message is."""
        request_id = job.request
        lock = self._local.get(request_id)
        if lock is None:
            lock = self._local[request_id] = asyncio.Lock()
        async with lock:
            claim = await self._claim(request_id)
            placed = Placed(claim.route, claim.message_id, claim.channel_id)
            left = self._left.pop(request_id, None)
            current = left is not None and (left.released_at, left.message_id) == (
                claim.released_at,
                claim.message_id,
            )
            if left is not None and current:
                self._current[request_id] = left.message
            composed = False
            try:
                receipt, placed = await compose(claim)
                composed = True
            finally:
                now = self.bot.clock.time()
                edited = self._current.pop(request_id, None)
                released = await self.bot.store.deliveries.release_message(
                    request_id,
                    now,
                    route=placed.route,
                    message_id=placed.message_id,
                    channel_id=placed.channel_id,
                )
                if not released:
                    log.warning(
                        "request %s: its message's claim ran out while it was being edited", request_id
                    )
                # Only a whole composition leaves a message known as it is (an error may hide an edit).
                if composed and released and edited is not None and edited.id == placed.message_id:
                    self._left[request_id] = Left(now, edited.id, edited)
                    while len(self._left) > LEFT_KEPT:
                        self._left.popitem(last=False)
            return receipt

    # -- what callers use -------------------------------------------------------------------------------

    async def show(self, job: Job, parcel: Parcel | None) -> DeliveryReceipt | None:
        """Put the job's outcome (its images in `parcel`, or its failure when None) into the request's
        message, creating it if it is the first. None when the message cannot take it (deleted, or
        reached through an interaction whose token has expired): the caller sends it on its own."""
        return await self._holding(job, lambda claim: self._compose(job, parcel, claim, create=True))

    async def refresh(self, job: Job) -> None:
        """Show the request as the store has it now (after a cancel, or a crash recovery), if its
        message exists."""
        try:
            await self._holding(job, lambda claim: self._compose(job, None, claim, create=False))
        except discord.HTTPException as exc:
            log.info("request %s: could not refresh its message (%s)", job.request, exc.status)

    async def placed(self, job: Job) -> RequestMessage | None:
        return await self.bot.store.deliveries.message(job.request)

    # -- composing --------------------------------------------------------------------------------------

    async def _compose(
        self, job: Job, parcel: Parcel | None, claim: RequestMessage, *, create: bool
    ) -> tuple[DeliveryReceipt | None, Placed]:
        store = self.bot.store
        jobs = await store.jobs.of_request(job.request)
        placed = Placed(claim.route, claim.message_id, claim.channel_id)
        if placed.message_id is None:
            placed = await self._adopt_earlier(job, jobs, placed)
        if placed.message_id is None or placed.route is None:
            if not create:
                return None, placed
            return await self._create(job, jobs, parcel)
        return await self._edit(job, jobs, parcel, placed, create=create)

    def _parcel(self, job: Job, jobs: list[Job], parcel: Parcel | None, shown: set[int]) -> Parcel:
        """The request's message as it is to look: its text in the server's and in the requester's
        language, its buttons, and this job's files (if any)."""
        now = self.bot.clock.time()
        states = image_states(jobs, shown)
        running = any(s.state == RENDERING for s in states)
        head = states[0].job
        ends = [j.finished_at for j in jobs if j.finished_at is not None]
        elapsed = (now if running or not ends else max(ends)) - head.created_at
        public, private = public_language(job), job.locale
        return Parcel(
            job,
            public_text=request_text(jobs, shown, elapsed, public),
            private_text=request_text(jobs, shown, elapsed, private),
            elapsed=elapsed,
            uploads=list(parcel.uploads) if parcel else [],
            indexes=list(parcel.indexes) if parcel else [],
            failure=parcel is None,
            public_view=request_view(states, public, running=running, private=False),
            private_view=request_view(states, private, running=running, private=True),
        )

    async def _create(
        self, job: Job, jobs: list[Job], parcel: Parcel | None
    ) -> tuple[DeliveryReceipt | None, Placed]:
        shown = {job.id} if parcel is not None and parcel.uploads else set()
        message = self._parcel(job, jobs, parcel, shown)
        message.failure = False  # the request's message is its result, whatever this job's outcome
        done = len(shown)
        message.pointer = lambda link: request_pointer(done, len(jobs), link, public_language(job))
        receipt, route = await self.try_routes(message, image_routes(job, self.bot.clock.time()))
        if route is None or receipt.delivery == UNDELIVERABLE or receipt.message_id is None:
            return receipt, Placed(None, None, None)
        log.info("request %s: its message is %s (%s)", job.request, receipt.message_id, route.kind)
        return receipt, Placed(route.kind, receipt.message_id, receipt.channel_id)

    async def _edit(
        self, job: Job, jobs: list[Job], parcel: Parcel | None, placed: Placed, *, create: bool
    ) -> tuple[DeliveryReceipt | None, Placed]:
        assert placed.route is not None and placed.message_id is not None
        store, now = self.bot.store, self.bot.clock.time()
        editor = self._editor(job, jobs)
        try:
            current = self._current.get(job.request) or await fetch_on_route(
                self.bot, editor, placed.route, placed.message_id, placed.channel_id
            )
        except discord.NotFound:
            if not create:
                return None, placed
            log.info("request %s: its message %s is gone; starting a new one", job.request, placed.message_id)
            return await self._create(job, jobs, parcel)
        except (TokenGone, discord.Forbidden):
            return None, placed
        files = parcel.files() if parcel is not None else []
        attachments: list[discord.Attachment | discord.File] = []
        shown: set[int] = set()
        for each in sorted(jobs, key=lambda j: j.request_index):
            kept = [a for a in current.attachments if a.filename.startswith(marker(each))]
            if each.id == job.id and files:
                attachments += files  # sent again after a crash: replaces what got in, never doubles
                shown.add(each.id)
            elif kept:
                attachments += kept
                shown.add(each.id)
        attachments = attachments[:MAX_FILES]
        message = self._parcel(job, jobs, parcel, shown)
        private = placed.route == "ephemeral" or (placed.route == "dm" and job.deliver_to is not None)
        indexes = message.indexes if files else []
        if indexes and not await store.deliveries.intend(job.id, indexes, placed.route, now):
            raise RuntimeError(f"job {job.id}: another delivery is under way")
        try:
            edited = await edit_on_route(
                self.bot,
                editor,
                placed.route,
                placed.message_id,
                placed.channel_id,
                content=message.private_text if private else message.public_text,
                attachments=attachments,
                view=message.private_view if private else message.public_view,
            )
        except (discord.NotFound, discord.Forbidden, TokenGone) as exc:
            log.info("request %s: its message cannot be edited (%s)", job.request, exc)
            if indexes:
                await store.deliveries.settle(job.id, indexes, REFUSED, self.bot.clock.time())
            return None, placed
        self._current[job.request] = edited
        route = BY_KIND[placed.route]
        receipt = DeliveryReceipt(route.delivery, edited.id, placed.channel_id)
        if indexes:
            await store.deliveries.settle(
                job.id,
                indexes,
                SENT,
                self.bot.clock.time(),
                message_id=edited.id,
                channel_id=placed.channel_id,
            )
        if placed.route in ("channel", "followup"):
            done = sum(1 for s in image_states(jobs, shown) if s.state == SHOWN)
            link = jump_url(job.guild_id if placed.route == "channel" else None, placed.channel_id, edited.id)
            await self._point(editor, request_pointer(done, len(jobs), link, public_language(job)))
        return receipt, placed

    def _editor(self, job: Job, jobs: list[Job]) -> Job:
        """The job whose interaction token edits the message: this one, or any of the request's whose
        token still lives (a delivered job's token is dropped)."""
        now = self.bot.clock.time()
        if job.token_usable(now):
            return job
        return next((j for j in jobs if j.token_usable(now)), job)

    async def _point(self, job: Job, text: str) -> None:
        await edit_status_quietly(self.bot, job, text)

    # -- after a crash --------------------------------------------------------------------------------------

    async def _adopt_earlier(self, job: Job, jobs: list[Job], placed: Placed) -> Placed:
        """No message is recorded, but another job of the request was being sent when its process died
        (its intent is still `sending`): the message it was creating may exist. Look for it on that
        route and adopt it, so that the request never gets two messages."""
        others = [j for j in jobs if j.id != job.id]
        rows = await self.bot.store.deliveries.of_jobs([j.id for j in jobs])
        for row in rows:
            # An image recorded in a message whose placement was not (its process died in between).
            if row.state == SENT and row.message_id is not None:
                log.info("request %s: its message is %s, as its images say", job.request, row.message_id)
                return Placed(row.route, row.message_id, row.channel_id)
        for row in rows:
            if row.job_id == job.id:
                continue
            if row.state != SENDING:
                continue
            other = next(j for j in others if j.id == row.job_id)
            try:
                found = await find_carrying(self.bot, other, row.route, None)
            except CannotTell:
                continue
            if found is not None:
                log.info("request %s: adopting its message %s left by a crash", job.request, found.message_id)
                await self.bot.store.deliveries.settle(
                    other.id,
                    [row.image_index],
                    SENT,
                    self.bot.clock.time(),
                    message_id=found.message_id,
                    channel_id=found.channel_id,
                )
                return Placed(row.route, found.message_id, found.channel_id)
        return placed


@dataclass(frozen=True)
class Left:
    """A request's message as this process's last edit left it, and when it let the claim go."""

    released_at: float
    message_id: int
    message: discord.Message


class Placed:
    """Where a request's message is (all None: nowhere yet)."""

    __slots__ = ("channel_id", "message_id", "route")

    def __init__(self, route: str | None, message_id: int | None, channel_id: int | None) -> None:
        self.route, self.message_id, self.channel_id = route, message_id, channel_id


async def find_carrying(
    bot: SinkBot, job: Job, kind: str, placed: RequestMessage | None
) -> DeliveryReceipt | None:
    """The message on route `kind` that carries the job's files: the request's message when it is
    recorded (fetched by id), else a search of the route (its own files, never a mere reply: the reply
    to the status message may be the request's message without this job's image). CannotTell when the
    route cannot be looked at."""
    route = BY_KIND[kind]
    if placed is not None and placed.message_id is not None and placed.route == kind:
        try:
            message = await fetch_on_route(bot, job, kind, placed.message_id, placed.channel_id)
        except TokenGone as exc:
            raise CannotTell from exc
        except discord.NotFound:
            return None
        except discord.HTTPException as exc:
            raise CannotTell from exc
        if carries_images(message, job):
            return DeliveryReceipt(route.delivery, message.id, placed.channel_id)
        return None
    if kind in ("channel", "dm", "status"):
        found = await route.find(bot, job)
        if found is None or found.message_id is None:
            return None
        try:
            message = await fetch_on_route(bot, job, kind, found.message_id, found.channel_id)
        except (TokenGone, discord.HTTPException) as exc:
            raise CannotTell from exc
        return found if carries_images(message, job) else None
    raise CannotTell
