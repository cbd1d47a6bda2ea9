"""The gallery repository: a member's posted images for the web gallery, newest first in keyset pages,
with filters and search by prompt words (bot/core/prompt_words.py), and the index those words live in.

Every query is scoped to one member (`user_id = :user`): a page can only ever list, or open, the images of
the member who is signed in, whatever ids the address carries. An image is in the gallery once it was
posted (status 'delivered') and until its message is deleted."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

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
    " result_urls, result_message_id, result_channel_id, deliver_to, context, place_guild_id"
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

    @property
    def private(self) -> bool:
        return self.deliver_to is not None

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
    columns = ", ".join(f"j.{column.strip()}" for column in _COLUMNS.split(","))
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
