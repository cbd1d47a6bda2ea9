"""The web gallery: an aiohttp web server that ships with the bot (docs/web.md).

It imports the core, the adapters (the store) and the operations' settings, never discord.py: sign-in
is Discord's OAuth2 over plain HTTP, and every page reads the database through the Store."""
