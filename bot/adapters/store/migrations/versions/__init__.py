"""Alembic revisions, applied in order by `bot.adapters.store.migrations.chain`."""
