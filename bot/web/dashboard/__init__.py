"""The moderators' dashboard of the web gallery: a server's settings as forms (the same store calls as
`/imagine-admin`), its statistics as charts with their CSV, for the bot's own two roles checked with
Discord (docs/web.md, Dashboard)."""
