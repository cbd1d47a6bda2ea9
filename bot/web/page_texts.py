"""Every text of the web pages, as catalog msgids (bot/locales, `make messages`), and the reader's
language: the browser's first supported language, else their Discord locale, else English."""

from __future__ import annotations

from bot.core.i18n import N_, language_for, t
from bot.web.dashboard.dashboard_texts import DASHBOARD_TEXTS

# Each page reads these by key; a template never holds a sentence of its own.
PAGE_TEXTS = {
    "site": N_("Imagine gallery"),
    "my_images": N_("My images"),
    "skip": N_("Skip to the images"),
    "sign_in_title": N_("Sign in"),
    "sign_in_lead": N_("Sign in with your Discord account to see the images you made with the bot."),
    "sign_in_button": N_("Sign in with Discord"),
    "sign_out": N_("Sign out"),
    "signed_in_as": N_("Signed in as {name}"),
    "search_label": N_("Search your prompts"),
    "search_hint": N_("Words in English, Chinese or any language"),
    "filters": N_("Filters"),
    "server": N_("Server"),
    "all_servers": N_("All servers"),
    "personal_use": N_("Personal use"),
    "date_from": N_("From (UTC)"),
    "date_to": N_("To (UTC)"),
    "aspect_ratio": N_("Aspect ratio"),
    "any_shape": N_("Any shape"),
    "style": N_("Style"),
    "any_style": N_("Any style"),
    "no_style": N_("None"),
    "apply": N_("Apply"),
    "clear": N_("Clear"),
    "more": N_("More images"),
    "loading": N_("Loading more images…"),
    "the_end": N_("That is all of them."),
    "none_yet": N_("No images yet. Make one with /imagine in Discord and it appears here."),
    "none_match": N_("No images match. Try other words or fewer filters."),
    "prompt": N_("Prompt"),
    "made_by": N_("Made by"),
    "made_on": N_("Made on"),
    "where": N_("Where"),
    "private": N_("Private: only you can see it"),
    "open_in_discord": N_("Open its message in Discord"),
    "copy_command": N_("Copy command"),
    "copied": N_("Copied"),
    "command_label": N_("The command that makes it again"),
    "back": N_("Back to my images"),
    "not_found_title": N_("Not found"),
    "not_found": N_("There is no image here, or it is not yours to see."),
    "too_many_title": N_("Too many requests"),
    "too_many": N_("Too many requests. Please wait a minute and try again."),
    "sign_in_failed_title": N_("Sign-in failed"),
    "sign_in_failed": N_("Signing in with Discord did not work. Please try again."),
    "expired_title": N_("Form expired"),
    "expired": N_("This form has expired. Please reload the page and try again."),
    "error_title": N_("Something went wrong"),
    "error": N_("Something went wrong on our side. Please try again in a moment."),
    **DASHBOARD_TEXTS,  # the moderators' dashboard (bot/web/dashboard/)
    "server_galleries": N_("Server galleries"),
    "server_gallery": N_("Gallery of {name}"),
    "search_server": N_("Search the prompts"),
    "none_in_server": N_("No images here yet. Images posted in the server with /imagine appear here."),
    "video": N_("Video"),
    "references": N_("References"),
    "no_references": N_("None"),
    "delete": N_("Delete"),
    "delete_hint": N_("Deletes the image from Discord and from the gallery. This cannot be undone."),
    "remove": N_("Remove from gallery"),
    "remove_hint": N_("Moderators: takes the image out of the server's gallery; it stays in Discord."),
    "removed": N_("Removed from the server's gallery by a moderator."),
    "back_server": N_("Back to the server's gallery"),
    "a_member": N_("A member of the server"),
    "delete_failed_title": N_("Not deleted"),
    "delete_failed": N_("The image could not be deleted from Discord. Please try again in a moment."),
}
SHIPPED = {"zh": "zh-CN", "en": "en"}


def page_texts(locale: str) -> dict[str, str]:
    return {key: t(locale, text) for key, text in PAGE_TEXTS.items()}


def browser_language(accept_language: str) -> str | None:
    """The first language of an Accept-Language header that the gallery speaks, by preference."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        ranked.append((-quality, position, tag.strip().lower()))
    for _, _, tag in sorted(ranked):
        if (language := SHIPPED.get(tag.split("-", 1)[0])) is not None:
            return language
    return None


def reader_language(accept_language: str, discord_locale: str | None) -> str:
    found = browser_language(accept_language)
    if found is not None:
        return found
    return "zh-CN" if language_for(discord_locale).startswith("zh") else "en"
