"""The Discord adapter: everything that speaks discord.py except the commands themselves.

- `replies`   how the bot answers: NO_PINGS, say_privately, shared texts
- `checks`    who may do what (moderator, server admin) and what the bot itself lacks
- `members`   the quota policy's view of a member, from an interaction
- `requests`  starting a job from any interaction (/imagine, Reroll, Edit): admit, acknowledge, launch
- `views`     the buttons (DynamicItems), the Edit dialog and /history's pages
- `admin`     the one `/imagine-admin` group that the admin cogs add their subcommands to
- `sink`      the JobRunner's sink: progress, delivery, failure and mod-log posts
- `check`     `python -m bot check`

Commands live in `cogs/` (one cog per file) and import from here; nothing here imports `cogs`.
"""
