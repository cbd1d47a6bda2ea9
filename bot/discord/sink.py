"""Where the core meets discord.py: turns job progress and outcomes into Discord messages."""

from __future__ import annotations

import datetime
import io
import logging
from typing import TYPE_CHECKING

import discord

from bot.adapters.media import ImageFile, fit_to_limit_in_pool
from bot.core import messages
from bot.core.i18n import N_, t
from bot.core.models import Job, Stage
from bot.core.policy.styles import DELIVERY_DM, DELIVERY_EPHEMERAL, PRIVATE_DELIVERIES
from bot.core.runner import DeliveryReceipt
from bot.discord.replies import NO_PINGS
from bot.discord.views import private_result_view, result_view, status_view

if TYPE_CHECKING:
    from bot.discord.client import ImagineBot

log = logging.getLogger(__name__)

DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024
MAX_FILES = 10  # Discord's limit of attachments per message
# How many of the channel's messages after the status message are searched for an earlier image post.
RECONCILE_SCAN = 200
MODLOG_THROTTLE = 60.0


def public_language(job: Job) -> str | None:
    """Status edits, the image post and failures are seen by the channel: the server's language
    (carried on the job from the interaction). A DM is the requester's own (`job.locale`)."""
    return job.guild_locale or job.locale


class DiscordSink:
    """Delivers through the interaction while its token lasts, and the channel otherwise.

    The finished image goes to the channel as a new message (so the member sees it arrive where
    the conversation is), and the status message becomes a pointer to it. If the bot may not post
    in the channel, the image goes into the interaction's own message instead; if that token has
    expired too, into a DM.
    """

    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot
        self._modlog_last: dict[tuple[object, ...], float] = {}

    def _webhook(self, job: Job) -> discord.Webhook:
        assert job.application_id is not None and job.interaction_token is not None
        return discord.Webhook.partial(job.application_id, job.interaction_token, client=self.bot)

    def _followup(self, job: Job) -> discord.Webhook:
        """The interaction's follow-up webhook, as discord.py builds it (type 3, an application
        webhook: only those may send messages only the requester sees)."""
        assert job.application_id is not None and job.interaction_token is not None
        payload = {"id": job.application_id, "type": 3, "token": job.interaction_token}
        return discord.Webhook.from_state(data=payload, state=self.bot._connection)  # type: ignore[arg-type]

    def _token_ok(self, job: Job) -> bool:
        return job.message_id is not None and job.token_usable(self.bot.clock.time())

    async def _edit_status(
        self,
        job: Job,
        content: str,
        files: list[discord.File] | None = None,
        view: discord.ui.View | None = None,
    ) -> int | None:
        """Edit the interaction's message; without a view its buttons are removed."""
        assert job.message_id is not None
        message = await self._webhook(job).edit_message(
            job.message_id,
            content=messages.clip(content),
            attachments=files or [],
            view=view,
            allowed_mentions=NO_PINGS,
        )
        return message.id

    async def progress(self, job: Job, stage: Stage, elapsed: float, typical: float | None) -> None:
        if not self._token_ok(job):
            return  # after 15 minutes the status message can no longer be edited; the result still comes
        try:
            await self._edit_status(
                job,
                messages.status_text(job, stage, elapsed, typical, locale=public_language(job)),
                view=status_view(job.id, public_language(job)),
            )
        except (discord.NotFound, discord.Forbidden) as exc:
            # The status message was deleted, or the token revoked: the result is still delivered.
            log.info("job %s: status message not editable (%s)", job.id, exc.status)

    async def show_cancelled(self, job: Job, text: str) -> None:
        """A job cancelled from elsewhere (e.g. /queue): its status message says so and loses its button."""
        if not self._token_ok(job):
            return
        try:
            await self._edit_status(job, text)
        except discord.HTTPException as exc:
            log.info("job %s: could not mark the status message cancelled (%s)", job.id, exc.status)

    def _upload_limit(self, job: Job) -> int:
        guild = self.bot.get_guild(job.guild_id) if job.guild_id else None
        return guild.filesize_limit if guild is not None else DEFAULT_UPLOAD_LIMIT

    async def _prepare(
        self, job: Job, images: list[ImageFile]
    ) -> tuple[list[discord.File], list[tuple[str, str]]]:
        limit = self._upload_limit(job)
        files: list[discord.File] = []
        links: list[tuple[str, str]] = []
        for index, image in enumerate(images, start=1):
            if len(files) >= MAX_FILES:
                if image.url:
                    links.append((image.url, N_("more images than one message can hold")))
                continue
            if image.data is None:
                if image.url:
                    links.append((image.url, image.error or N_("download failed")))
                continue
            # Pillow work is CPU-bound: off the event loop, on the image pool.
            fitted = await fit_to_limit_in_pool(image.data, image.content_type, limit)
            if fitted is None:
                if image.url:
                    links.append((image.url, N_("too large to upload here")))
                continue
            extension = "jpg" if fitted.content_type == "image/jpeg" else image.extension
            name = f"imagine-{job.id}-{index}.{extension}"
            files.append(discord.File(io.BytesIO(fitted.data), filename=name))
        return files, links

    async def deliver(self, job: Job, images: list[ImageFile], elapsed: float) -> DeliveryReceipt:
        await self.bot.wait_until_ready()
        files, links = await self._prepare(job, images)
        locale = public_language(job)
        content = messages.result_text(job, elapsed, len(files) or len(images), links, locale=locale)
        if not files and not links:
            # Each image's error is member-safe text (details of the host went to the log only).
            why = next((image.error for image in images if image.error), None)
            if why:
                return await self.fail(job, N_("The image could not be downloaded: {why}.").format(why=why))
            return await self.fail(job, N_("The image could not be downloaded from the image service."))
        if job.is_personal:
            return await self._deliver_personal(job, content, files, elapsed)
        if job.deliver_to in PRIVATE_DELIVERIES:
            # Read by the requester alone: in their language, not the server's.
            private_content = messages.result_text(
                job, elapsed, len(files) or len(images), links, locale=job.locale
            )
            private = await self._deliver_privately(job, private_content, files, elapsed)
            if private is not None:
                return private
            for file in files:
                file.reset()
        try:
            posted = await self._post_with_short_text_if_refused(job, content, files, elapsed)
        except (discord.Forbidden, discord.NotFound) as exc:
            log.warning("job %s: cannot post in channel %s (%s)", job.id, job.channel_id, exc.status)
            for file in files:
                file.reset()
            return await self._deliver_elsewhere(job, content, files)
        if self._token_ok(job):
            try:
                await self._edit_status(job, messages.done_pointer(elapsed, posted.jump_url, locale))
            except discord.HTTPException as exc:
                log.info("job %s: could not update the status message (%s)", job.id, exc.status)
        await self._modlog_finished(job, posted.jump_url)
        return DeliveryReceipt("channel", posted.id, posted.channel.id)

    async def _deliver_personal(
        self, job: Job, content: str, files: list[discord.File], elapsed: float
    ) -> DeliveryReceipt:
        """Personal use: the bot may have no access to the channel at all (a server it is not in, a
        group DM), so it answers through the interaction only. The image comes as a follow-up (the
        requester is notified, and the status message points at it) while Discord's follow-up limit
        allows, else in the edited status message; once the token has expired, by DM."""
        if job.token_usable(self.bot.clock.time()):
            if await self.bot.runner.use_followup(job):
                try:
                    posted = await self._webhook(job).send(
                        messages.clip(content),
                        files=files,
                        view=result_view(job.id, public_language(job)),
                        wait=True,
                        allowed_mentions=NO_PINGS,
                    )
                except discord.HTTPException as exc:
                    log.warning("job %s: the interaction refused the follow-up (%s)", job.id, exc.status)
                    for file in files:
                        file.reset()
                else:
                    if job.message_id is not None:
                        try:
                            await self._edit_status(
                                job, messages.done_pointer(elapsed, posted.jump_url, public_language(job))
                            )
                        except discord.HTTPException as exc:
                            log.info("job %s: could not update the status message (%s)", job.id, exc.status)
                    return DeliveryReceipt("interaction", posted.id, job.channel_id)
            if job.message_id is not None:
                receipt = await self._result_in_status(job, content, files)
                if receipt is not None:
                    return receipt
        note = messages.late_delivery_note(job.context, job.place_guild_id, job.channel_id, job.locale)
        return await self._direct_message(job, content, files, note=note)

    async def _deliver_privately(
        self, job: Job, content: str, files: list[discord.File], elapsed: float
    ) -> DeliveryReceipt | None:
        """The member chose private images (/settings) where the server allows them: a message only
        they see on the interaction while its token lives, else (or if they chose it) a DM. The public
        status message says where the image went. None if neither worked: the channel then gets it,
        so the image is never lost."""
        ways = [DELIVERY_EPHEMERAL, DELIVERY_DM] if job.deliver_to == DELIVERY_EPHEMERAL else [DELIVERY_DM]
        if job.deliver_to == DELIVERY_DM:
            ways.append(DELIVERY_EPHEMERAL)  # DMs closed: a message only they see, while it can be sent
        for way in ways:
            if way == DELIVERY_EPHEMERAL and not job.token_usable(self.bot.clock.time()):
                continue
            if self._token_ok(job):
                # First, so that the status message is no longer "thinking…" when the follow-up comes.
                try:
                    await self._edit_status(job, messages.done_privately(elapsed, way, public_language(job)))
                except discord.HTTPException as exc:
                    log.info("job %s: could not update the status message (%s)", job.id, exc.status)
            for file in files:
                file.reset()
            try:
                if way == DELIVERY_EPHEMERAL:
                    sent = await self._followup(job).send(
                        messages.clip(content),
                        files=files,
                        view=private_result_view(job.id, job.locale),
                        ephemeral=True,
                        wait=True,
                        allowed_mentions=NO_PINGS,
                    )
                    return DeliveryReceipt(DELIVERY_EPHEMERAL, sent.id, job.channel_id)
                note = t(job.locale, messages.PRIVATE_DM_NOTE)
                receipt = await self._send_dm(job, f"{note}\n{content}", files)
            except discord.HTTPException as exc:
                log.warning("job %s: could not deliver it privately by %s (%s)", job.id, way, exc.status)
                continue
            if receipt is not None:
                return receipt
        log.warning("job %s: no private way worked; posting it in the channel", job.id)
        return None

    async def _send_dm(self, job: Job, content: str, files: list[discord.File]) -> DeliveryReceipt | None:
        if job.user_id is None:
            return None
        user = self.bot.get_user(job.user_id) or await self.bot.fetch_user(job.user_id)
        sent = await user.send(messages.clip(content), files=files, allowed_mentions=NO_PINGS)
        return DeliveryReceipt(DELIVERY_DM, sent.id, sent.channel.id)

    async def _post_with_short_text_if_refused(
        self, job: Job, content: str, files: list[discord.File], elapsed: float
    ) -> discord.Message:
        """Post the result; if Discord refuses the message itself (400: a form error in the text),
        post the images again with only the short headline, so that they are never lost."""
        try:
            return await self._post_in_channel(job, content, files)
        except discord.HTTPException as exc:
            if exc.status != 400:
                raise
            log.warning(
                "job %s: Discord refused the result message (%s); posting a shorter one", job.id, exc.code
            )
            for file in files:
                file.reset()
            short = messages.done_text(job, elapsed, len(files), public_language(job))
            return await self._post_in_channel(job, short, files)

    async def find_delivery(self, job: Job) -> DeliveryReceipt | None:
        """After a restart: the image post an earlier process made for this job, if Discord has it.

        The post is the bot's reply to the status message, carrying the job's files (`imagine-<id>-N`),
        among the channel's messages after the status message (or after the job began). If the channel
        was closed to the bot, the files went into the status message itself. A DM is not searched."""
        await self.bot.wait_until_ready()
        if job.is_personal:
            return await self._find_personal_delivery(job)
        if job.channel_id is None or self.bot.user is None:
            return None
        marker = f"imagine-{job.id}-"
        channel = self.bot.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
        start = job.message_id or discord.utils.time_snowflake(
            datetime.datetime.fromtimestamp(job.created_at, datetime.UTC)
        )
        try:
            async for message in channel.history(limit=RECONCILE_SCAN, after=discord.Object(start)):
                if message.author.id != self.bot.user.id:
                    continue
                ours = any(a.filename.startswith(marker) for a in message.attachments)
                replies = message.reference is not None and message.reference.message_id == job.message_id
                if ours or (replies and job.message_id is not None):
                    return DeliveryReceipt("channel", message.id, message.channel.id)
            if job.message_id is not None:
                status = await channel.fetch_message(job.message_id)
                if any(a.filename.startswith(marker) for a in status.attachments):
                    return DeliveryReceipt("interaction", status.id, job.channel_id)
        except (discord.NotFound, discord.Forbidden) as exc:
            log.info("job %s: cannot look for an earlier post (%s)", job.id, exc.status)
        return None

    async def _find_personal_delivery(self, job: Job) -> DeliveryReceipt | None:
        """Personal use: only the status message can be looked at (through the interaction, while its
        token lasts); a follow-up's id is not known before it is recorded."""
        if not self._token_ok(job):
            return None
        assert job.message_id is not None
        try:
            status = await self._webhook(job).fetch_message(job.message_id)
        except discord.HTTPException as exc:
            log.info("job %s: cannot look at the status message (%s)", job.id, exc.status)
            return None
        if any(a.filename.startswith(f"imagine-{job.id}-") for a in status.attachments):
            return DeliveryReceipt("interaction", status.id, job.channel_id)
        return None

    async def _post_in_channel(self, job: Job, content: str, files: list[discord.File]) -> discord.Message:
        """Post in the job's channel; raises discord.Forbidden/NotFound when that is not possible."""
        channel = self.bot.get_partial_messageable(job.channel_id or 0, guild_id=job.guild_id)
        view = result_view(job.id, public_language(job)) if files else discord.utils.MISSING
        # The nonce makes a repeated post (a restart between posting and recording it) return the
        # message already posted instead of a second copy.
        nonce = f"imagine-{job.id}"
        content = messages.clip(content)
        if job.message_id is None:
            return await channel.send(content, files=files, allowed_mentions=NO_PINGS, view=view, nonce=nonce)
        # A reply to the status message: the member sees at once which request this answers.
        reference = discord.MessageReference(
            message_id=job.message_id, channel_id=channel.id, guild_id=job.guild_id, fail_if_not_exists=False
        )
        return await channel.send(
            content, files=files, allowed_mentions=NO_PINGS, reference=reference, view=view, nonce=nonce
        )

    async def _deliver_elsewhere(self, job: Job, content: str, files: list[discord.File]) -> DeliveryReceipt:
        """The channel refused us: use the interaction's own message, else a DM."""
        if self._token_ok(job):
            receipt = await self._result_in_status(job, content, files)
            if receipt is not None:
                return receipt
        return await self._direct_message(job, content, files)

    async def _result_in_status(
        self, job: Job, content: str, files: list[discord.File]
    ) -> DeliveryReceipt | None:
        """The result in the interaction's own (status) message; None if Discord refused it, with the
        files rewound for the next way."""
        try:
            message_id = await self._edit_status(
                job, content, files, view=result_view(job.id, public_language(job))
            )
        except discord.HTTPException as exc:
            log.warning("job %s: the interaction refused the result (%s)", job.id, exc.status)
            for file in files:
                file.reset()
            return None
        return DeliveryReceipt("interaction", message_id, job.channel_id)

    async def _direct_message(
        self,
        job: Job,
        content: str,
        files: list[discord.File],
        *,
        note: str | None = None,
    ) -> DeliveryReceipt:
        if job.user_id is None:
            return DeliveryReceipt("undeliverable")
        try:
            user = self.bot.get_user(job.user_id) or await self.bot.fetch_user(job.user_id)
            # A DM is read by the requester alone: the note in their language (the content was made
            # for the channel, in the server's).
            if note is None:
                note = t(job.locale, "I could not post in the channel where you asked, so here it is.")
            sent = await user.send(
                messages.clip(f"{note}\n{content}"), files=files, allowed_mentions=NO_PINGS
            )
        except discord.HTTPException as exc:
            log.warning("job %s: could not DM the requester either (%s)", job.id, exc.status)
            return DeliveryReceipt("undeliverable")
        return DeliveryReceipt("dm", sent.id, sent.channel.id)

    async def modlog(
        self, guild_id: int | None, text: str, *, throttle: tuple[object, ...] | None = None
    ) -> None:
        """Post a short entry in the guild's mod-log channel, if it has one. Never raises.

        With `throttle`, entries with the same key come at most once a minute: a member hammering
        /imagine while refused must not flood the channel (every refusal is in the usage log anyway)."""
        if guild_id is None:
            return
        if throttle is not None:
            now = self.bot.clock.time()
            key = (guild_id, *throttle)
            if now - self._modlog_last.get(key, float("-inf")) < MODLOG_THROTTLE:
                return
            self._modlog_last[key] = now
            if len(self._modlog_last) > 10_000:
                self._modlog_last.clear()
        try:
            policy = await self.bot.store.guild_policy(guild_id)
            if policy.modlog_channel_id is None:
                return
            channel = self.bot.get_partial_messageable(policy.modlog_channel_id, guild_id=guild_id)
            await channel.send(messages.clip(text), allowed_mentions=NO_PINGS)
        except discord.HTTPException as exc:
            log.warning("guild %s: cannot post in the mod-log channel (%s)", guild_id, exc.status)

    async def _modlog_finished(self, job: Job, jump_url: str) -> None:
        if job.guild_id is None:
            return
        policy = await self.bot.store.guild_policy(job.guild_id)
        if policy.modlog_finished:
            await self.modlog(job.guild_id, messages.modlog_finished(job, jump_url, job.guild_locale))

    async def fail(self, job: Job, reason: str) -> DeliveryReceipt:
        await self.bot.wait_until_ready()
        content = messages.failure_text(job, reason, public_language(job))
        if self._token_ok(job):
            try:
                message_id = await self._edit_status(job, content)
            except discord.HTTPException as exc:
                log.info("job %s: could not edit the status message (%s)", job.id, exc.status)
            else:
                return DeliveryReceipt("interaction", message_id)
        if job.is_personal:  # no channel to post in: tell them by DM
            note = messages.late_failure_note(job.context, job.place_guild_id, job.channel_id, job.locale)
            return await self._direct_message(job, content, [], note=note)
        try:
            posted = await self._post_in_channel(job, content, [])
        except (discord.Forbidden, discord.NotFound):
            return await self._direct_message(job, content, [])
        return DeliveryReceipt("channel", posted.id)
