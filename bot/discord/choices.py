"""Option choices shared by more than one command (their names are translated by the command tree's
Translator, like every other choice name)."""

from __future__ import annotations

from discord import app_commands

ASPECT_CHOICES = [
    app_commands.Choice(name="Square 1:1", value="1:1"),
    app_commands.Choice(name="Portrait 2:3", value="2:3"),
    app_commands.Choice(name="Landscape 3:2", value="3:2"),
    app_commands.Choice(name="Tall 9:16", value="9:16"),
    app_commands.Choice(name="Wide 16:9", value="16:9"),
]
