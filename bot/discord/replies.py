"""How the bot answers on Discord: no pings, private replies, and the texts several commands share."""

from __future__ import annotations

from typing import Any

import discord

from bot.core import messages, reports
from bot.core.i18n import N_, t
from bot.core.texts import Text

# Every message the bot sends uses this: prompt text can never ping anyone.
NO_PINGS = discord.AllowedMentions.none()

GUILD_ONLY = N_("This command works in a server channel, not in DMs: quotas and images belong to a server.")


def private_locale(interaction: discord.Interaction[Any]) -> str:
    """The language of an answer only the member sees: their own Discord language."""
    return str(interaction.locale.value)


def public_locale(interaction: discord.Interaction[Any]) -> str:
    """The language of a message everyone in the channel sees: the server's (its Community setting),
    and outside a server the member's own."""
    if interaction.guild_id is not None and interaction.guild_locale is not None:
        return str(interaction.guild_locale.value)
    return private_locale(interaction)


async def say_privately(interaction: discord.Interaction[Any], text: Text | str) -> None:
    """A private answer that pings nobody, whether or not the interaction was answered already.

    A `Text` (a refusal made by the core) is rendered in the member's language, and so is a catalog
    constant (`N_`); a text already translated with `t()` passes through unchanged."""
    # Clipped after translating: a reply over Discord's limit would be refused whole.
    locale = private_locale(interaction)
    # A plain string is a catalog constant (looked up) or a text already rendered (passed through).
    text = messages.clip(text.render(locale) if isinstance(text, Text) else t(locale, text))
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_PINGS)
    else:
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_PINGS)


async def reply(interaction: discord.Interaction[Any], text: Text | str) -> None:
    """A private answer cut at a line boundary (for reports and lists): what /usage and
    /imagine-admin answer with. A `Text` is rendered in the reader's language first."""
    locale = private_locale(interaction)
    if isinstance(text, Text):
        text = text.render(locale)
    await say_privately(interaction, reports.clip(text, locale=locale))
