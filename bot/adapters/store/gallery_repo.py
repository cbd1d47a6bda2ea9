"""The gallery repository: a member's posted images and a server's gallery for the web pages, newest first
in keyset pages, with filters and search by prompt words (bot/core/prompt_words.py), the index those
words live in, and the server's gallery switches and moderators' removals.

My images are scoped to one member (`user_id = :user`); a server's gallery to one server
(`guild_id = :guild`) and only its public images: never a private one (delivered by DM or ephemerally),
one a moderator removed, or (the server's choice, on by default) one of a member banned from the bot
there. An image is in a gallery once it was posted (status 'delivered') and until its message is
deleted. Which server a page may show is the web tier's check (bot/web/membership.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from bot.adapters.store.admin_log import log_admin_change
from bot.adapters.store.interface import Session, Tx
from bot.adapters.store.repository import Repository, call
from bot.adapters.store.statements import indexed_by, listed
from bot.core.prompt_words import index_terms

# The meta key holding the highest job id whose prompt words may still be missing from prompt_terms
# (jobs posted before the gallery existed); the backfill walks down from it and then deletes it.
BACKFILL_KEY = "prompt_terms_backfill"
# Facets (the servers and styles offered as filters) are read from the member's newest images only.
FACET_WINDOW = 5000
_COLUMNS = (
    "id, guild_id, channel_id, user_id, prompt, style, aspect_ratio, created_at, delivered_at,"
    " result_urls, result_message_id, result_channel_id, deliver_to, context, place_guild_id, media,"
    " style_text, reference_urls, source_job_id, source_image_index, gallery_removed_at"
)


@dataclass(frozen=True)
class GalleryImage:
    """One posted image (or set of images: one job) as the gallery shows it."""

    id: int
    guild_id: int | None
    channel_id: int | None
    user_id: int
    prompt: str
    style: str | None
    aspect_ratio: str | None
    created_at: float
    delivered_at: float | None
    result_urls: list[str]
    message_id: int | None
    message_channel_id: int | None
    deliver_to: str | None  # None: posted in the channel; "ephemeral" or "dm": private to its maker
    context: str | None
    place_guild_id: int | None
    media: str = "image"  # image | video
    reference_count: int = 0
    source_job_id: int | None = None  # the image a video (or a variation) was made from
    source_image_index: int | None = None
    removed: bool = False  # a moderator took it out of the server's gallery

    @property
    def private(self) -> bool:
        return self.deliver_to is not None

    @property
    def is_video(self) -> bool:
        return self.media == "video"

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> GalleryImage:
        return cls(
            id=int(row["id"]),
            guild_id=row["guild_id"],
            channel_id=row["channel_id"],
            user_id=int(row["user_id"]),
            prompt=row["prompt"],
            style=row["style"],
            aspect_ratio=row["aspect_ratio"],
            created_at=float(row["created_at"]),
            delivered_at=row["delivered_at"],
            result_urls=json.loads(row["result_urls"] or "[]"),
            message_id=row["result_message_id"],
            message_channel_id=row["result_channel_id"] or row["channel_id"],
            deliver_to=row["deliver_to"],
            context=row["context"],
            place_guild_id=row["place_guild_id"],
            media=row["media"] or "image",
            reference_count=len(json.loads(row["reference_urls"] or "[]")),
            source_job_id=row["source_job_id"],
            source_image_index=row["source_image_index"],
            removed=row["gallery_removed_at"] is not None,
        )


@dataclass(frozen=True)
class GalleryFilter:
    """What a gallery page is narrowed to. `server`: a server id, PERSONAL (personal use: no server)
    or None (everything). `since`/`until`: created_at bounds, epoch seconds, until exclusive.
    `terms`: prompt words (prompt_words.query_terms), all required."""

    server: int | None = None
    personal: bool = False
    since: float | None = None
    until: float | None = None
    aspect_ratio: str | None = None
    style: str | None = None
    terms: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Facets:
    """The servers and styles the member's newest images come from (for the filter menus)."""

    servers: list[int]
    personal: bool
    styles: list[str]


def _aliased(alias: str) -> str:
    return ", ".join(f"{alias}.{column.strip()}" for column in _COLUMNS.split(","))


def _in_gallery(alias: str = "") -> str:
    """Posted and not deleted (the partial index jobs_gallery_user holds the posted ones)."""
    prefix = f"{alias}." if alias else ""
    return f"{prefix}status = 'delivered' AND {prefix}result_deleted_at IS NULL"


def _filters(flt: GalleryFilter, alias: str) -> tuple[str, dict[str, Any]]:
    """The filter's conditions (fixed texts, one per kind of filter) and their named values."""
    sql: list[str] = []
    params: dict[str, Any] = {}
    if flt.personal:
        sql.append(f"{alias}.guild_id IS NULL")
    elif flt.server is not None:
        sql.append(f"{alias}.guild_id = :server")
        params["server"] = flt.server
    if flt.since is not None:
        sql.append(f"{alias}.created_at >= :since")
        params["since"] = flt.since
    if flt.until is not None:
        sql.append(f"{alias}.created_at < :until")
        params["until"] = flt.until
    if flt.aspect_ratio:
        sql.append(f"{alias}.aspect_ratio = :ratio")
        params["ratio"] = flt.aspect_ratio
    if flt.style:
        sql.append(f"lower({alias}.style) = lower(:style)")
        params["style"] = flt.style
    return "".join(f" AND {term}" for term in sql), params


def _server_visible(hide_banned: bool) -> str:
    """A server gallery's rows: public, not removed, and (when the server says so) no banned member's."""
    visible = " AND j.deliver_to IS NULL AND j.gallery_removed_at IS NULL"
    if hide_banned:
        visible += (
            " AND NOT EXISTS (SELECT 1 FROM bans AS b WHERE b.guild_id = j.guild_id AND b.user_id = j.user_id"
            " AND (b.expires_at IS NULL OR b.expires_at > :now))"
        )
    return visible


def _all_terms(terms: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    """Each word must be among the image's prompt words: a primary-key look-up per row and word."""
    _, params = listed("term", terms)
    sql = "".join(
        " AND EXISTS (SELECT 1 FROM prompt_terms AS q"
        f" WHERE q.user_id = j.user_id AND q.term = :{name} AND q.job_id = j.id)"
        for name in params
    )
    return sql, params


def server_images(
    s: Session,
    guild_id: int,
    flt: GalleryFilter,
    *,
    hide_banned: bool,
    now: float,
    before_id: int | None = None,
    limit: int = 30,
) -> list[GalleryImage]:
    """One page of a server's gallery, newest first, older than job `before_id` (keyset). The jobs are
    walked newest first by id and each checked for the search's words (docs/performance.md: gallery)."""
    extra, params = _filters(flt, "j")
    words, word_params = _all_terms(flt.terms)
    params |= word_params | {"guild": guild_id, "limit": limit, "now": now}
    page = ""
    if before_id is not None:
        page, params["before"] = " AND j.id < :before", before_id
    rows = s.dicts(
        f"SELECT {_aliased('j')} FROM jobs AS j"
        f" WHERE j.guild_id = :guild AND j.status = 'delivered' AND j.result_message_id IS NOT NULL"
        f" AND j.result_deleted_at IS NULL{_server_visible(hide_banned)}{extra}{words}{page}"
        " ORDER BY j.id DESC LIMIT :limit",
        params,
    )
    return [GalleryImage.from_row(row) for row in rows]


def server_image(
    s: Session, guild_id: int, job_id: int, *, hide_banned: bool, now: float
) -> GalleryImage | None:
    """One image of a server's gallery; None when it is not (or no longer) shown there."""
    rows = s.dicts(
        f"SELECT {_aliased('j')} FROM jobs AS j WHERE j.id = :id AND j.guild_id = :guild"
        f" AND {_in_gallery('j')} AND j.result_message_id IS NOT NULL{_server_visible(hide_banned)}",
        {"id": job_id, "guild": guild_id, "now": now},
    )
    return GalleryImage.from_row(rows[0]) if rows else None


def any_image(s: Session, job_id: int) -> GalleryImage | None:
    """An image in the gallery whoever made it: the web tier decides who may see it (its maker, or
    a member of its server when it is in that server's gallery)."""
    rows = s.dicts(f"SELECT {_COLUMNS} FROM jobs WHERE id = :id AND {_in_gallery()}", {"id": job_id})
    return GalleryImage.from_row(rows[0]) if rows else None


# -- a server's gallery switches and its moderators' removals ------------------------------------------


@dataclass(frozen=True)
class GallerySwitches:
    enabled: bool = False  # off until the server's admins turn it on
    hide_banned: bool = True  # images of members banned from the bot are hidden unless they say not


def switches(s: Session, guild_id: int) -> GallerySwitches:
    row = s.row(
        "SELECT gallery_enabled, gallery_hide_banned FROM guild_settings WHERE guild_id = :guild",
        {"guild": guild_id},
    )
    if row is None:
        return GallerySwitches()
    return GallerySwitches(enabled=bool(row[0]), hide_banned=row[1] is None or bool(row[1]))


def open_galleries(s: Session, guild_ids: list[int]) -> list[int]:
    """Which of these servers have their gallery turned on."""
    if not guild_ids:
        return []
    marks, params = listed("guild", guild_ids)
    rows = s.rows(
        f"SELECT guild_id FROM guild_settings WHERE gallery_enabled = 1 AND guild_id IN ({marks})", params
    )
    return sorted(int(row[0]) for row in rows)


def set_switches(
    s: Session,
    guild_id: int,
    actor_id: int,
    now: float,
    *,
    enabled: bool | None = None,
    hide_banned: bool | None = None,
) -> GallerySwitches:
    """Turn the server's gallery on or off and choose whether banned members' images hide, with the
    admin-log entry every server setting gets; returns the switches as they are now."""
    changes: dict[str, int] = {}
    if enabled is not None:
        changes["gallery_enabled"] = int(enabled)
    if hide_banned is not None:
        changes["gallery_hide_banned"] = int(hide_banned)
    with s.write() as tx:
        tx.execute(
            "INSERT INTO guild_settings (guild_id) VALUES (:guild) ON CONFLICT DO NOTHING",
            {"guild": guild_id},
        )
        if changes:
            assignments = ", ".join(f"{column} = :{column}" for column in changes)
            tx.execute(
                f"UPDATE guild_settings SET {assignments} WHERE guild_id = :guild",
                changes | {"guild": guild_id},
            )
            log_admin_change(tx, guild_id, actor_id, "gallery", None, changes, now)
    return switches(s, guild_id)


def remove_image(s: Session, guild_id: int, job_id: int, actor_id: int, now: float) -> bool:
    """A moderator takes a posted image of their server out of its gallery (it stays in Discord and in
    its maker's own images). False when it is not one of the server's gallery images."""
    with s.write() as tx:
        changed = tx.execute(
            "UPDATE jobs SET gallery_removed_at = :now, gallery_removed_by = :actor WHERE id = :id"
            " AND guild_id = :guild AND status = 'delivered' AND gallery_removed_at IS NULL",
            {"now": now, "actor": actor_id, "id": job_id, "guild": guild_id},
        ).rowcount
        if changed:
            log_admin_change(tx, guild_id, actor_id, "gallery_remove", f"job:{job_id}", {}, now)
    return bool(changed)


def my_images(
    s: Session, user_id: int, flt: GalleryFilter, before_id: int | None = None, limit: int = 30
) -> list[GalleryImage]:
    """One page of the member's images, newest first: those older than job `before_id` (keyset), or
    the newest. With search terms the rarest path is walked: the first term's index range, newest
    first, each row checked for the other terms by primary-key look-ups."""
    extra, params = _filters(flt, "j")
    params |= {"user": user_id, "limit": limit}
    if before_id is not None:
        params["before"] = before_id
    if not flt.terms:
        page = "" if before_id is None else " AND j.id < :before"
        rows = s.dicts(
            f"SELECT {_COLUMNS} FROM jobs AS j{indexed_by(s.dialect, 'jobs_gallery_user')}"
            f" WHERE j.user_id = :user AND {_in_gallery('j')}{extra}{page}"
            " ORDER BY j.id DESC LIMIT :limit",
            params,
        )
        return [GalleryImage.from_row(row) for row in rows]
    first, *others = flt.terms
    _, term_params = listed("term", others)
    more = "".join(
        " AND EXISTS (SELECT 1 FROM prompt_terms AS q"
        f" WHERE q.user_id = :user AND q.term = :{name} AND q.job_id = t.job_id)"
        for name in term_params
    )
    columns = _aliased("j")
    keyset = "" if before_id is None else " AND t.job_id < :before"
    rows = s.dicts(
        f"SELECT {columns} FROM prompt_terms AS t JOIN jobs AS j ON j.id = t.job_id"
        f" WHERE t.user_id = :user AND t.term = :first{keyset}{more}"
        f" AND j.user_id = :user AND {_in_gallery('j')}{extra}"
        " ORDER BY t.job_id DESC LIMIT :limit",
        params | term_params | {"first": first},
    )
    return [GalleryImage.from_row(row) for row in rows]


def my_image(s: Session, user_id: int, job_id: int) -> GalleryImage | None:
    """One of the member's images; None for anyone else's (or one not in the gallery)."""
    rows = s.dicts(
        f"SELECT {_COLUMNS} FROM jobs WHERE id = :id AND user_id = :user AND {_in_gallery()}",
        {"id": job_id, "user": user_id},
    )
    return GalleryImage.from_row(rows[0]) if rows else None


def my_facets(s: Session, user_id: int) -> Facets:
    rows = s.rows(
        "SELECT DISTINCT guild_id, style FROM (SELECT guild_id, style FROM jobs"
        f"{indexed_by(s.dialect, 'jobs_gallery_user')}"
        f" WHERE user_id = :user AND {_in_gallery()} ORDER BY id DESC LIMIT :window) AS newest",
        {"user": user_id, "window": FACET_WINDOW},
    )
    servers = sorted({int(guild) for guild, _ in rows if guild is not None})
    styles = sorted({str(style) for _, style in rows if style}, key=str.casefold)
    return Facets(servers, any(guild is None for guild, _ in rows), styles)


# -- the index of prompt words ---------------------------------------------------------------------


def _insert_terms(tx: Tx, user_id: int, job_id: int, prompt: str) -> None:
    for term in sorted(index_terms(prompt)):
        tx.execute(
            "INSERT INTO prompt_terms (user_id, term, job_id) VALUES (:user, :term, :job)"
            " ON CONFLICT DO NOTHING",
            {"user": user_id, "term": term, "job": job_id},
        )


def index_posted(tx: Tx, job_id: int) -> None:
    """Index a job's prompt words once it is posted (called inside the delivery's transaction)."""
    row = tx.execute(
        "SELECT user_id, prompt FROM jobs WHERE id = :id AND status = 'delivered' AND user_id IS NOT NULL",
        {"id": job_id},
    ).fetchone()
    if row is not None:
        _insert_terms(tx, int(row[0]), job_id, str(row[1]))


def backfill_terms(s: Session, batch: int = 500) -> bool:
    """Index the words of up to `batch` images posted before the gallery existed, newest first.
    Returns True once none are left."""
    row = s.row("SELECT value FROM meta WHERE key = :key", {"key": BACKFILL_KEY})
    if row is None:
        return True
    top = int(row[0])
    rows = s.rows(
        "SELECT id, user_id, prompt FROM jobs WHERE id <= :top AND status = 'delivered'"
        " AND user_id IS NOT NULL ORDER BY id DESC LIMIT :batch",
        {"top": top, "batch": batch},
    )
    with s.write() as tx:
        for job_id, user_id, prompt in rows:
            _insert_terms(tx, int(user_id), int(job_id), str(prompt))
        if len(rows) < batch:
            tx.execute("DELETE FROM meta WHERE key = :key", {"key": BACKFILL_KEY})
            return True
        tx.execute(
            "UPDATE meta SET value = :value WHERE key = :key",
            {"value": str(int(rows[-1][0]) - 1), "key": BACKFILL_KEY},
        )
    return False


class Gallery(Repository):
    """The web gallery's reads, each scoped to the signed-in member: `store.gallery`."""

    page = call(my_images)  # a page of the member's own images, newest first, older than `before_id`
    image = call(my_image)  # one image of the member's own; None for anyone else's
    facets = call(my_facets)
    backfill_prompt_words = call(backfill_terms)  # True once images from before the gallery are indexed
    server_page = call(server_images)  # a page of a server's gallery (the caller checked membership)
    server_image = call(server_image)  # one image of a server's gallery; None when not shown there
    any_image = call(any_image)  # an image in the gallery, whoever made it (for the web's own checks)
    switches = call(switches)  # the server's gallery on/off and whether banned members' images hide
    open_galleries = call(open_galleries)  # which of the given servers have their gallery on
    set_switches = call(set_switches)  # change them, with an admin-log entry
    remove = call(remove_image)  # a moderator removes an image from the server's gallery
