"""The one ordered migration chain (Alembic revisions in `versions/`) that builds `schema.metadata` on
SQLite and PostgreSQL. Revisions 0001-0009 are the schema versions 1-9 the bot had on SQLite
(PostgreSQL's versions 1-4 are 0006-0009), so every database an earlier version wrote is taken over
where it stands (`chain.py`). Never edit a released revision: append a new one."""
