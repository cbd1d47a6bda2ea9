""" "Use as reference": a message context menu that turns any message's images into the references
of a new image, with the prompt asked in a dialog."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord.reference_menu import open_reference_dialog

if TYPE_CHECKING:
    from bot.discord.bot_base import ImagineBotBase

MENU_NAME = "Use as reference"


class Reference(commands.Cog):
    def __init__(self, bot: ImagineBotBase) -> None:
        self.bot = bot
        # discord.py has no context-menu decorator for cog methods: the menu is added to the tree here.
        self.menu = app_commands.ContextMenu(
            name=MENU_NAME,
            callback=self.use_as_reference,
            allowed_contexts=app_commands.AppCommandContext(guild=True),
        )

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    async def use_as_reference(
        self, interaction: discord.Interaction[ImagineBotBase], message: discord.Message
    ) -> None:
        await open_reference_dialog(interaction, message)


async def setup(bot: ImagineBotBase) -> None:
    await bot.add_cog(Reference(bot))
