"""Command names, descriptions, option names and choice names in every shipped language.

discord.py passes every such string (a `locale_str`, made from the plain strings in the decorators)
through the tree's Translator when it builds the payload it syncs; Discord then shows each member the
names in their own language. Names come from the catalog under a msgctxt (`command name`,
`option name`, `choice name`): Discord requires them lowercase, 1-32 characters, without spaces. A
context menu's name (`context menu name`) is 1-32 characters and may hold spaces and capitals. A
string the catalog lacks stays in English (returning None leaves it out of the localizations).
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands

from bot.core.i18n import (
    CHOICE_NAME,
    COMMAND_NAME,
    CONTEXT_MENU_NAME,
    OPTION_NAME,
    SOURCE_LANGUAGE,
    language_for,
    lookup,
)

_CONTEXTS = {
    app_commands.TranslationContextLocation.command_name: COMMAND_NAME,
    app_commands.TranslationContextLocation.group_name: COMMAND_NAME,
    app_commands.TranslationContextLocation.parameter_name: OPTION_NAME,
    app_commands.TranslationContextLocation.choice_name: CHOICE_NAME,
}


def catalog_context(location: app_commands.TranslationContextLocation, data: Any = None) -> str | None:
    """The msgctxt a command string is filed under: names have their own, descriptions none. discord.py
    asks for a context menu's name as a `command_name` too; `data` (the menu) tells them apart."""
    if isinstance(data, app_commands.ContextMenu):
        return CONTEXT_MENU_NAME
    return _CONTEXTS.get(location)


class CatalogTranslator(app_commands.Translator):
    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        if language_for(locale) == SOURCE_LANGUAGE:
            return None  # English is the default text itself
        return lookup(locale, string.message, catalog_context(context.location, context.data))
