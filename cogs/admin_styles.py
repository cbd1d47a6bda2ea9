"""/imagine-admin style (add, remove, list) and private-images: the server's named styles, and whether
members may have their images delivered privately.

Settings writes, like the limits: they go straight to the store with their admin_log row."""

from __future__ import annotations

from typing import TYPE_CHECKING

from discord import app_commands

from bot.core import change_sentences as say
from bot.core import messages
from bot.core.policy.styles import MAX_STYLE_NAME, MAX_STYLE_TEXT, MAX_STYLES, StyleError, clean_style
from bot.discord.admin import AdminCog, Interaction
from bot.discord.replies import private_locale, reply
from bot.discord.style_autocomplete import style_choices

if TYPE_CHECKING:
    from bot.discord.bot_base import ImagineBotBase


class AdminStyles(AdminCog):
    style = app_commands.Group(name="style", description="Named styles members can add to their prompts")

    @style.command(name="add", description="Add a style (or replace the text of one with that name)")
    @app_commands.describe(
        name=f"What members pick in /imagine (at most {MAX_STYLE_NAME} characters)",
        text=f"Added to the member's prompt (at most {MAX_STYLE_TEXT} characters)",
    )
    async def style_add(
        self,
        interaction: Interaction,
        name: app_commands.Range[str, 1, MAX_STYLE_NAME],
        text: app_commands.Range[str, 1, MAX_STYLE_TEXT],
    ) -> None:
        try:
            style = clean_style(name, text)
            replaced = await self.bot.store.styles.add(
                self.gid(interaction), style, interaction.user.id, self.now()
            )
        except StyleError as error:
            await reply(interaction, messages.style_not_saved(error.text, private_locale(interaction)))
            return
        await reply(
            interaction,
            messages.style_saved(
                style.name, style.text, replaced=replaced, locale=private_locale(interaction)
            ),
        )
        await self.log_change(interaction, say.style_saved(style.name, replaced))

    @style.command(name="remove", description="Remove a style")
    @app_commands.describe(name="The style's name")
    @app_commands.autocomplete(name=style_choices)
    async def style_remove(self, interaction: Interaction, name: app_commands.Range[str, 1, 100]) -> None:
        removed = await self.bot.store.styles.remove(
            self.gid(interaction), name.strip(), interaction.user.id, self.now()
        )
        await reply(
            interaction,
            messages.style_removed(
                removed.name if removed else name, found=bool(removed), locale=private_locale(interaction)
            ),
        )
        if removed is not None:
            await self.log_change(interaction, say.style_removed(removed.name))

    @style.command(name="list", description="The server's styles and their texts")
    async def style_list(self, interaction: Interaction) -> None:
        styles = await self.bot.store.styles.all(self.gid(interaction))
        await reply(
            interaction,
            messages.style_list([(s.name, s.text) for s in styles], MAX_STYLES, private_locale(interaction)),
        )

    @app_commands.command(
        name="private-images", description="Whether members may have their images sent to them privately"
    )
    @app_commands.describe(
        enabled="True: members may choose private delivery in /settings; False (default): never"
    )
    async def private_images(self, interaction: Interaction, enabled: bool) -> None:
        await self.bot.store.settings.update_policy(
            self.gid(interaction), interaction.user.id, self.now(), private_images=enabled
        )
        await reply(interaction, messages.private_images_switched(enabled, private_locale(interaction)))
        await self.log_change(interaction, say.private_images(enabled))


async def setup(bot: ImagineBotBase) -> None:
    await bot.add_cog(AdminStyles(bot))
