"""The one ordered migration chain (Alembic revisions in `versions/`) that builds `schema.metadata` on
SQLite and PostgreSQL. Revisions 0001-0010 are the schema versions 1-10 the bot had on SQLite
(PostgreSQL's versions 1-5 are 0006-0010), so every database an earlier version wrote is taken over
where it stands (`chain.py`). Never edit a released revision: append a new one."""

import logging

# Alembic says at INFO what it loads, which implementation it uses and each revision it applies: the
# bot's start-up output stays the operator's own one-line messages. Set here, before chain.py imports
# Alembic (its plugins log while they load).
logging.getLogger("alembic").setLevel(logging.WARNING)

# The newest revision: a database there needs no migration (checked without loading Alembic).
HEAD = "0015"
