"""The server styles and members' own settings repository. Style writes are logged in admin_log in the
same transaction, like every other server setting."""

from __future__ import annotations

from bot.adapters.store.admin_log import log_admin_change
from bot.adapters.store.folding import name_key
from bot.adapters.store.interface import Session
from bot.adapters.store.repository import Repository, call
from bot.adapters.store.usage_repo import count_limit, read_policy
from bot.core.policy.styles import MAX_STYLES, MemberSettings, RequestDefaults, Style, StyleError
from bot.core.texts import msg

_MEMBER_COLUMNS = ("aspect_ratio", "style", "delivery", "image_count")


def add_style(s: Session, guild_id: int, style: Style, actor_id: int, now: float) -> bool:
    """Save a style checked by `bot.styles.clean_style`; a style of the same name (in any case) has
    its text replaced. True if it replaced one. Raises StyleError when the server has MAX_STYLES."""
    key = {"guild": guild_id, "key": name_key(style.name)}
    with s.write() as tx:
        # Two moderators adding the last allowed style at once from two processes: one waits.
        s.lock(tx, "styles", guild_id)
        existing = tx.execute(
            "SELECT id FROM styles WHERE guild_id = :guild AND name_key = :key", key
        ).fetchone()
        if existing is not None:
            tx.execute(
                "UPDATE styles SET name = :name, name_key = :key, text = :text, created_by = :by,"
                " created_at = :now WHERE id = :id",
                {
                    **key,
                    "name": style.name,
                    "text": style.text,
                    "by": actor_id,
                    "now": now,
                    "id": existing[0],
                },
            )
        else:
            count = int(tx.execute("SELECT COUNT(*) FROM styles WHERE guild_id = :guild", key).fetchone()[0])
            if count >= MAX_STYLES:
                raise StyleError(
                    msg(
                        "this server already has {count} styles, the most it can have is {most}; "
                        "remove one first",
                        count=count,
                        most=MAX_STYLES,
                    )
                )
            tx.insert(
                "styles",
                {
                    "guild_id": guild_id,
                    "name": style.name,
                    "name_key": key["key"],
                    "text": style.text,
                    "created_by": actor_id,
                    "created_at": now,
                },
            )
        action = "style_update" if existing is not None else "style_add"
        log_admin_change(tx, guild_id, actor_id, action, f"style:{style.name}", {"text": style.text}, now)
    return existing is not None


_STYLE = "SELECT name, text, created_by, created_at FROM styles"


def remove_style(s: Session, guild_id: int, name: str, actor_id: int, now: float) -> Style | None:
    with s.write() as tx:
        row = tx.execute(
            "SELECT id, name, text, created_by, created_at FROM styles"
            " WHERE guild_id = :guild AND name_key = :key",
            {"guild": guild_id, "key": name_key(name)},
        ).fetchone()
        if row is None:
            return None
        tx.execute("DELETE FROM styles WHERE id = :id", {"id": row[0]})
        log_admin_change(tx, guild_id, actor_id, "style_remove", f"style:{row[1]}", {"text": row[2]}, now)
    return Style(str(row[1]), str(row[2]), row[3], row[4])


def styles(s: Session, guild_id: int) -> list[Style]:
    rows = s.rows(f"{_STYLE} WHERE guild_id = :guild ORDER BY name_key, id", {"guild": guild_id})
    return [Style(str(n), str(t), by, at) for n, t, by, at in rows]


def style(s: Session, guild_id: int, name: str) -> Style | None:
    """The server's style of that name, in any case (`schema.name_key`)."""
    row = s.row(
        f"{_STYLE} WHERE guild_id = :guild AND name_key = :key", {"guild": guild_id, "key": name_key(name)}
    )
    return Style(str(row[0]), str(row[1]), row[2], row[3]) if row is not None else None


_MEMBER = (
    f"SELECT {', '.join(_MEMBER_COLUMNS)} FROM member_settings WHERE guild_id = :guild AND user_id = :user"
)


def member_settings(s: Session, guild_id: int, user_id: int) -> MemberSettings:
    row = s.row(_MEMBER, {"guild": guild_id, "user": user_id})
    return MemberSettings(*row) if row is not None else MemberSettings()


def save_member_settings(
    s: Session, /, guild_id: int, user_id: int, now: float, **changes: str | int | None
) -> MemberSettings:
    """Set (a value) or clear (None) some of a member's settings; returns them all as they are now."""
    unknown = set(changes) - set(_MEMBER_COLUMNS)
    if unknown:
        raise ValueError(f"unknown member settings: {', '.join(sorted(unknown))}")
    member = {"guild": guild_id, "user": user_id}
    with s.write() as tx:
        tx.execute(
            "INSERT INTO member_settings (guild_id, user_id, updated_at) VALUES (:guild, :user, :now)"
            " ON CONFLICT (guild_id, user_id) DO UPDATE SET updated_at = excluded.updated_at",
            {**member, "now": now},
        )
        if changes:
            assignments = ", ".join(f"{column} = :{column}" for column in changes)
            tx.execute(
                f"UPDATE member_settings SET {assignments} WHERE guild_id = :guild AND user_id = :user",
                {**changes, **member},
            )
        row = tx.execute(_MEMBER, member).fetchone()
    return MemberSettings(*row)


def request_defaults(
    s: Session, guild_id: int, user_id: int, style_name: str | None, role_ids: tuple[int, ...] = ()
) -> RequestDefaults:
    """What a request of this member needs besides its own options, in one read: their settings,
    the style it names (else their default style), whether the server allows private images, and
    the most images one request of theirs may ask for (their roles decide that too)."""
    own = member_settings(s, guild_id, user_id)
    wanted = style_name or own.style
    found = style(s, guild_id, wanted) if wanted else None
    limit = count_limit(s, guild_id, user_id, role_ids)
    return RequestDefaults(own, found, read_policy(s, guild_id).private_images, limit)


class Styles(Repository):
    """Server styles and members' own settings: `store.styles`."""

    add = call(add_style)
    remove = call(remove_style)
    all = call(styles)
    get = call(style)
    request_defaults = call(request_defaults)
    member_settings = call(member_settings)
    save_member_settings = call(save_member_settings)
