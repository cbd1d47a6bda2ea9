"""While the bot stops, every new interaction is turned away the same way: a private "restarting"
answer (an empty list for autocomplete), whether it is a command, a context menu, a button or a
dialog. discord.py dispatches each kind through its own check, so each calls `admit`."""

from __future__ import annotations

import logging
from typing import Any

import discord

from bot.core.i18n import N_
from bot.discord.replies import say_privately

log = logging.getLogger(__name__)

STOPPING_TEXT = N_("The image bot is restarting. Please try again in a minute.")


async def admit(interaction: discord.Interaction[Any]) -> bool:
    """True to go on; False, the member told why, once the bot has started to stop (no new work is
    taken then: the runner is letting in-flight work finish and releasing its jobs)."""
    if not getattr(interaction.client, "stopping", False):
        return True
    try:
        if interaction.type is discord.InteractionType.autocomplete:
            await interaction.response.autocomplete([])
        else:
            await say_privately(interaction, STOPPING_TEXT)
    except discord.HTTPException:
        log.info("could not tell a member that the bot is restarting")
    return False


class Dialog(discord.ui.Modal):
    """The base of the bot's dialogs: a dialog submitted while the bot stops starts nothing."""

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        return await admit(interaction)
