"""The ways a job's outcome can reach Discord: the channel, the status message, an interaction follow-up,
a message only the requester sees, a DM. Each route sends one parcel and, after a crash, says whether an
earlier send arrived (or that it cannot be told)."""

from __future__ import annotations

import datetime
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import discord

from bot.adapters.store import Store
from bot.core import messages
from bot.core.clock import Clock
from bot.core.i18n import N_, t
from bot.core.models import Job
from bot.core.runner import DeliveryReceipt
from bot.discord.animate_dialog import private_result_buttons, result_buttons
from bot.discord.replies import NO_PINGS

log = logging.getLogger(__name__)

# How many of a channel's messages after the status message are searched for an earlier image post.
CHANNEL_SCAN = 200
# How many of the newest messages of the requester's DM channel are searched.
DM_SCAN = 50
CHANNEL_REFUSED_NOTE = N_("I could not post in the channel where you asked, so here it is.")


@dataclass(frozen=True)
class SinkBot:
    """What the sink and its routes need of the bot: its Discord client, its store and its clock."""

    client: discord.Client
    store: Store
    clock: Clock


@dataclass(frozen=True)
class Sent:
    """What a route's send left: the receipt the runner records, and a link to the message."""

    receipt: DeliveryReceipt
    jump_url: str


class Unavailable(Exception):
    """The route is closed before anything was sent (e.g. the interaction's follow-up limit)."""


class CannotTell(Exception):
    """The route cannot be searched afterwards (or not now): whether the parcel arrived is unknown."""


@dataclass(frozen=True)
class Upload:
    """One prepared image: the bytes Discord receives and the file name that marks it as this job's."""

    index: int
    filename: str
    data: bytes


@dataclass
class Parcel:
    """One message about a job: its images (none for a failure), the text for the channel (the server's
    language) and for the requester alone (their language). Files are made anew for every attempt, so
    nothing has to be rewound."""

    job: Job
    public_text: str
    private_text: str
    elapsed: float
    uploads: list[Upload] = field(default_factory=list)
    indexes: list[int] = field(default_factory=list)  # the job's images this message stands for
    failure: bool = False
    # A request's message (several images) brings its own buttons and its own status-message pointer.
    public_view: discord.ui.View | None = None
    private_view: discord.ui.View | None = None
    pointer: Callable[[str], str] | None = None  # the status message's text, given the message's link

    def files(self) -> list[discord.File]:
        return [discord.File(io.BytesIO(u.data), filename=u.filename) for u in self.uploads]


def marker(job: Job) -> str:
    """The start of every file name of the job's images: how an earlier post is recognised."""
    return f"imagine-{job.id}-"


def job_nonce(job: Job) -> str:
    """Discord returns the earlier message instead of a second one for a repeated nonce (a few minutes)."""
    return f"imagine-{job.id}"


def public_language(job: Job) -> str | None:
    """Status edits, the image post and failures are seen by the channel: the server's language."""
    return job.guild_locale or job.locale


def carries_images(message: discord.Message, job: Job) -> bool:
    return any(a.filename.startswith(marker(job)) for a in message.attachments)


# -- the one webhook, the one status edit, the one DM ------------------------------------------------


def interaction_webhook(bot: SinkBot, job: Job) -> discord.Webhook:
    """The interaction's webhook, as an application webhook (Discord's type 3): only those may send
    messages only the requester sees, and it edits the status message as well."""
    assert job.application_id is not None and job.interaction_token is not None
    hook = discord.Webhook.partial(job.application_id, job.interaction_token, client=bot.client)
    hook.type = discord.WebhookType.application
    return hook


async def edit_status(
    bot: SinkBot,
    job: Job,
    content: str,
    files: list[discord.File] | None = None,
    view: discord.ui.View | None = None,
) -> discord.Message:
    """Edit the interaction's status message; without a view its buttons are removed."""
    assert job.message_id is not None
    return await interaction_webhook(bot, job).edit_message(
        job.message_id,
        content=messages.clip(content),
        attachments=files or [],
        view=view,
        allowed_mentions=NO_PINGS,
    )


async def edit_status_quietly(bot: SinkBot, job: Job, content: str) -> None:
    """A status edit that only points elsewhere: if Discord refuses it, the outcome is still delivered."""
    if job.message_id is None or not job.token_usable(bot.clock.time()):
        return
    try:
        await edit_status(bot, job, content)
    except discord.HTTPException as exc:
        log.info("job %s: could not update the status message (%s)", job.id, exc.status)


async def send_dm(
    bot: SinkBot, job: Job, content: str, files: list[discord.File], *, nonce: str | None = None
) -> discord.Message:
    """The one way the bot writes to a requester's DMs, with a nonce (the job's, unless told)."""
    assert job.user_id is not None
    client = bot.client
    user = client.get_user(job.user_id) or await client.fetch_user(job.user_id)
    return await user.send(
        messages.clip(content), files=files, allowed_mentions=NO_PINGS, nonce=nonce or job_nonce(job)
    )


# -- the routes --------------------------------------------------------------------------------------


class Route:
    """One way to the requester. `kind` is written in the deliveries table; `delivery` on the job row."""

    kind: str = ""
    delivery: str = ""

    async def send(self, bot: SinkBot, parcel: Parcel) -> Sent:
        raise NotImplementedError

    async def after(self, bot: SinkBot, parcel: Parcel, sent: Sent) -> None:
        """What follows a recorded delivery (the status message pointing at it)."""

    async def find(self, bot: SinkBot, job: Job) -> DeliveryReceipt | None:
        """The parcel an earlier send left, None if it certainly did not arrive; CannotTell otherwise."""
        raise CannotTell


class ChannelRoute(Route):
    """A reply to the status message in the job's channel, with a nonce."""

    kind = delivery = "channel"

    async def send(self, bot: SinkBot, parcel: Parcel) -> Sent:
        job = parcel.job
        try:
            posted = await self._post(bot, parcel, parcel.public_text)
        except discord.HTTPException as exc:
            if exc.status != 400 or not parcel.uploads:
                raise
            # Discord refused the message itself (a form error in the text): the images again, with
            # only the short headline, so that they are never lost.
            log.warning(
                "job %s: Discord refused the result message (%s); posting a shorter one", job.id, exc.code
            )
            short = messages.done_text(job, parcel.elapsed, len(parcel.uploads), public_language(job))
            posted = await self._post(bot, parcel, short)
        return Sent(DeliveryReceipt(self.delivery, posted.id, posted.channel.id), posted.jump_url)

    async def _post(self, bot: SinkBot, parcel: Parcel, content: str) -> discord.Message:
        job = parcel.job
        channel = bot.client.get_partial_messageable(job.channel_id or 0, guild_id=job.guild_id)
        view = parcel.public_view or (
            result_buttons(job, public_language(job)) if parcel.uploads else discord.utils.MISSING
        )
        if job.message_id is None:
            # No status message to reply to (a job taken over before it was acknowledged). discord.py's
            # send() refuses a `reference` it cannot read, MISSING included: leave the argument out.
            return await channel.send(
                messages.clip(content),
                files=parcel.files(),
                allowed_mentions=NO_PINGS,
                view=view,
                nonce=job_nonce(job),
            )
        # A reply to the status message: the member sees at once which request this answers.
        reference = discord.MessageReference(
            message_id=job.message_id,
            channel_id=channel.id,
            guild_id=job.guild_id,
            fail_if_not_exists=False,
        )
        return await channel.send(
            messages.clip(content),
            files=parcel.files(),
            allowed_mentions=NO_PINGS,
            reference=reference,
            view=view,
            nonce=job_nonce(job),
        )

    async def after(self, bot: SinkBot, parcel: Parcel, sent: Sent) -> None:
        if not parcel.failure:
            job = parcel.job
            pointer = (
                parcel.pointer(sent.jump_url)
                if parcel.pointer
                else messages.done_pointer(
                    parcel.elapsed, sent.jump_url, public_language(job), video=job.media == "video"
                )
            )
            await edit_status_quietly(bot, job, pointer)

    async def find(self, bot: SinkBot, job: Job) -> DeliveryReceipt | None:
        """The bot's reply to the status message, or a message carrying the job's files, among the
        channel's messages after the status message (or after the job began)."""
        me = bot.client.user
        if job.channel_id is None or me is None:
            return None
        channel = bot.client.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
        start = job.message_id or snowflake(job.created_at)
        try:
            async for message in channel.history(limit=CHANNEL_SCAN, after=discord.Object(start)):
                if message.author.id != me.id:
                    continue
                replies = message.reference is not None and message.reference.message_id == job.message_id
                if carries_images(message, job) or (replies and job.message_id is not None):
                    return DeliveryReceipt(self.delivery, message.id, message.channel.id)
        except (discord.NotFound, discord.Forbidden) as exc:
            log.info("job %s: cannot look for an earlier post in the channel (%s)", job.id, exc.status)
            raise CannotTell from exc
        return None


class StatusRoute(Route):
    """The outcome in the interaction's own status message. Editing twice leaves one message."""

    kind = "status"
    delivery = "interaction"

    async def send(self, bot: SinkBot, parcel: Parcel) -> Sent:
        job = parcel.job
        view = parcel.public_view or (result_buttons(job, public_language(job)) if parcel.uploads else None)
        message = await edit_status(bot, job, parcel.public_text, parcel.files(), view=view)
        return Sent(DeliveryReceipt(self.delivery, message.id, job.channel_id), message.jump_url)

    async def find(self, bot: SinkBot, job: Job) -> DeliveryReceipt | None:
        if job.message_id is None:
            return None
        status: discord.Message
        try:
            if job.token_usable(bot.clock.time()):
                status = await interaction_webhook(bot, job).fetch_message(job.message_id)
            else:
                channel = bot.client.get_partial_messageable(job.channel_id or 0, guild_id=job.guild_id)
                status = await channel.fetch_message(job.message_id)
        except discord.HTTPException as exc:
            log.info("job %s: cannot look at the status message (%s)", job.id, exc.status)
            raise CannotTell from exc
        if carries_images(status, job):
            return DeliveryReceipt(self.delivery, status.id, job.channel_id)
        return None


class FollowupRoute(Route):
    """Personal use: a follow-up on the interaction (the requester is notified), while Discord's
    follow-up limit allows. Follow-ups cannot be listed afterwards."""

    kind = "followup"
    delivery = "interaction"

    async def send(self, bot: SinkBot, parcel: Parcel) -> Sent:
        job = parcel.job
        # Counted before sending, so that a retried delivery can never go past Discord's limit.
        if not await bot.store.jobs.use_followup(job.id):
            raise Unavailable
        job.followups_used += 1
        posted = await interaction_webhook(bot, job).send(
            messages.clip(parcel.public_text),
            files=parcel.files(),
            view=parcel.public_view or result_buttons(job, public_language(job)),
            wait=True,
            allowed_mentions=NO_PINGS,
        )
        return Sent(DeliveryReceipt(self.delivery, posted.id, job.channel_id), posted.jump_url)

    async def after(self, bot: SinkBot, parcel: Parcel, sent: Sent) -> None:
        job = parcel.job
        await edit_status_quietly(
            bot,
            job,
            parcel.pointer(sent.jump_url)
            if parcel.pointer
            else messages.done_pointer(
                parcel.elapsed, sent.jump_url, public_language(job), video=job.media == "video"
            ),
        )


class EphemeralRoute(Route):
    """A message only the requester sees, on the interaction. It cannot be listed afterwards."""

    kind = delivery = "ephemeral"

    async def send(self, bot: SinkBot, parcel: Parcel) -> Sent:
        job = parcel.job
        # First, so that the status message is no longer "thinking…" when the follow-up comes.
        await edit_status_quietly(
            bot, job, messages.done_privately(parcel.elapsed, self.delivery, public_language(job))
        )
        sent = await interaction_webhook(bot, job).send(
            messages.clip(parcel.private_text),
            files=parcel.files(),
            view=parcel.private_view or private_result_buttons(job, job.locale) or discord.utils.MISSING,
            ephemeral=True,
            wait=True,
            allowed_mentions=NO_PINGS,
        )
        return Sent(DeliveryReceipt(self.delivery, sent.id, job.channel_id), sent.jump_url)


class DmRoute(Route):
    """A DM to the requester, with a note saying why it came this way. Its history is searchable."""

    kind = delivery = "dm"

    def __init__(self, why: str) -> None:
        self.why = why  # "private" (their choice), "late" (personal use, token gone), "refused" (channel)

    def _note(self, parcel: Parcel) -> str:
        job = parcel.job
        if self.why == "private":
            return t(job.locale, messages.PRIVATE_DM_NOTE)
        if self.why == "late" and parcel.failure:
            return messages.late_failure_note(job.context, job.place_guild_id, job.channel_id, job.locale)
        if self.why == "late":
            return messages.late_delivery_note(job.context, job.place_guild_id, job.channel_id, job.locale)
        return t(job.locale, CHANNEL_REFUSED_NOTE)

    async def send(self, bot: SinkBot, parcel: Parcel) -> Sent:
        job = parcel.job
        if self.why == "private":
            await edit_status_quietly(
                bot, job, messages.done_privately(parcel.elapsed, self.delivery, public_language(job))
            )
        # Read by the requester alone: the note in their language.
        text = parcel.private_text if self.why == "private" else parcel.public_text
        sent = await send_dm(bot, job, f"{self._note(parcel)}\n{text}", parcel.files())
        return Sent(DeliveryReceipt(self.delivery, sent.id, sent.channel.id), sent.jump_url)

    async def find(self, bot: SinkBot, job: Job) -> DeliveryReceipt | None:
        me = bot.client.user
        if job.user_id is None or me is None:
            return None
        try:
            user = bot.client.get_user(job.user_id) or await bot.client.fetch_user(job.user_id)
            channel = user.dm_channel or await user.create_dm()
            async for message in channel.history(limit=DM_SCAN):
                if message.author.id == me.id and carries_images(message, job):
                    return DeliveryReceipt(self.delivery, message.id, channel.id)
        except discord.HTTPException as exc:
            log.info("job %s: cannot look for an earlier DM (%s)", job.id, exc.status)
            raise CannotTell from exc
        return None


# Routes whose messages are reached through the interaction's webhook (while its token lives).
WEBHOOK_KINDS = frozenset({"status", "followup", "ephemeral"})


class TokenGone(Exception):
    """The message is reached through the interaction's webhook, and its token has expired."""


def _messageable(bot: SinkBot, job: Job, kind: str, channel_id: int | None) -> discord.PartialMessageable:
    guild_id = job.guild_id if kind == "channel" else None
    return bot.client.get_partial_messageable(channel_id or job.channel_id or 0, guild_id=guild_id)


async def fetch_on_route(
    bot: SinkBot, job: Job, kind: str, message_id: int, channel_id: int | None
) -> discord.Message:
    """A message the bot sent on route `kind`, as it is now (its attachments freshly listed)."""
    if kind in WEBHOOK_KINDS:
        if not job.token_usable(bot.clock.time()):
            raise TokenGone
        return await interaction_webhook(bot, job).fetch_message(message_id)
    return await _messageable(bot, job, kind, channel_id).fetch_message(message_id)


async def edit_on_route(
    bot: SinkBot,
    job: Job,
    kind: str,
    message_id: int,
    channel_id: int | None,
    *,
    content: str,
    attachments: list[discord.Attachment | discord.File],
    view: discord.ui.View | None,
) -> discord.Message:
    """Edit a message the bot sent on route `kind`: its text, its attachments (kept ones by id, new
    files uploaded) and its buttons."""
    if kind in WEBHOOK_KINDS:
        if not job.token_usable(bot.clock.time()):
            raise TokenGone
        return await interaction_webhook(bot, job).edit_message(
            message_id,
            content=messages.clip(content),
            attachments=attachments,
            view=view,
            allowed_mentions=NO_PINGS,
        )
    partial = _messageable(bot, job, kind, channel_id).get_partial_message(message_id)
    return await partial.edit(
        content=messages.clip(content), attachments=attachments, view=view, allowed_mentions=NO_PINGS
    )


def jump_url(guild_id: int | None, channel_id: int | None, message_id: int | None) -> str:
    """A link to a message, as Discord writes it (`@me` outside a server)."""
    return f"https://discord.com/channels/{guild_id or '@me'}/{channel_id}/{message_id}"


def snowflake(timestamp: float) -> int:
    return discord.utils.time_snowflake(datetime.datetime.fromtimestamp(max(timestamp, 0.0), datetime.UTC))


CHANNEL = ChannelRoute()
STATUS = StatusRoute()
FOLLOWUP = FollowupRoute()
EPHEMERAL = EphemeralRoute()
# Searching a DM does not depend on why it was sent.
BY_KIND: dict[str, Route] = {r.kind: r for r in (CHANNEL, STATUS, FOLLOWUP, EPHEMERAL, DmRoute("private"))}
