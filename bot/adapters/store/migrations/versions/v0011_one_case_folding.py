"""One case folding for style names on both backends, and the lease index on both (the first revision
past the bot's own schema versions).

Style names were unique by the database's lower(): ASCII only on SQLite, the server's locale on
PostgreSQL, so `ÉCLAIR` and `éclair` could both exist on SQLite and then stopped `migrate-db`. Each
style now carries `name_key` (`schema.name_key`, computed by the bot, the same on both backends),
unique per server. Styles whose names fold to the same key are kept, none deleted: the oldest keeps
its name, each later one is renamed `name (2)`, `name (3)`, ... (cut to fit the 32-character limit),
and members' settings that chose a renamed style by its exact old name follow it to the new name.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.adapters.store.schema import Text, name_key

revision = "0011"
down_revision = "0010"

MAX_STYLE_NAME = 32


def upgrade() -> None:
    where = sa.text("lease_owner IS NOT NULL")
    op.create_index(
        "jobs_lease_owner",
        "jobs",
        ["lease_owner"],
        sqlite_where=where,
        postgresql_where=where,
        if_not_exists=True,
    )
    op.drop_index("styles_name", table_name="styles")
    op.add_column("styles", sa.Column("name_key", Text))
    bind = op.get_bind()
    taken: set[tuple[int, str]] = set()
    rows = bind.execute(sa.text("SELECT id, guild_id, name FROM styles ORDER BY created_at, id")).all()
    for style_id, guild_id, name in rows:
        new_name = _free_name(int(guild_id), str(name), taken)
        taken.add((int(guild_id), name_key(new_name)))
        bind.execute(
            sa.text("UPDATE styles SET name = :name, name_key = :key WHERE id = :id"),
            {"name": new_name, "key": name_key(new_name), "id": style_id},
        )
        if new_name != name:
            bind.execute(
                sa.text("UPDATE member_settings SET style = :new WHERE guild_id = :guild AND style = :old"),
                {"new": new_name, "guild": guild_id, "old": name},
            )
    with op.batch_alter_table("styles") as batch:
        batch.alter_column("name_key", existing_type=Text, nullable=False)
    op.create_index("styles_name_key", "styles", ["guild_id", "name_key"], unique=True)


def _free_name(guild_id: int, name: str, taken: set[tuple[int, str]]) -> str:
    """`name`, or the first `name (n)` whose key no earlier style of the server has."""
    candidate, n = name, 1
    while (guild_id, name_key(candidate)) in taken:
        n += 1
        suffix = f" ({n})"
        candidate = name[: MAX_STYLE_NAME - len(suffix)] + suffix
    return candidate
