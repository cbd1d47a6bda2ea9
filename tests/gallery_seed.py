"""Posted images for the web gallery's tests and bench: jobs taken through the store's real steps
(created, running, completed, delivered), so their prompt words are indexed as in production."""

from __future__ import annotations

from bot.adapters.store import Store
from bot.core.models import ImageRequest, Origin


async def post_image(
    store: Store,
    *,
    user_id: int,
    prompt: str,
    guild_id: int | None = None,
    channel_id: int = 9001,
    created_at: float = 1_760_000_000.0,
    aspect_ratio: str | None = "1:1",
    style: str | None = None,
    deliver_to: str | None = None,
    url: str = "http://127.0.0.1:9/none.png",
    message_id: int | None = 7777,
    media: str = "image",
    source_job_id: int | None = None,
    reference_urls: tuple[str, ...] = (),
) -> int:
    """One posted image (or video) of `user_id`; returns its job id."""
    job = await store.jobs.create(
        ImageRequest(
            prompt,
            aspect_ratio,
            reference_urls=reference_urls,
            style=style,
            style_text=style and f"in {style} style",
            media=media,
            source_job_id=source_job_id,
            source_image_index=1 if source_job_id else None,
        ),
        Origin(
            guild_id=guild_id,
            channel_id=channel_id,
            user_id=user_id,
            context="GUILD" if guild_id else "BOT_DM",
            deliver_to=deliver_to,
        ),
        created_at,
    )
    await store.jobs.mark_running(job.id, f"task-{job.id}", created_at + 1, created_at + 5)
    await store.jobs.mark_completed(job.id, [url], created_at + 10, None)
    await store.jobs.mark_delivered(
        job.id,
        delivery="posted",
        result_message_id=message_id,
        now=created_at + 11,
        result_channel_id=channel_id,
    )
    return job.id
