"""The message catalog: every member-facing text, in every shipped language.

The source of truth is one gettext catalog per language, `bot/locales/<lang>/LC_MESSAGES/messages.po`,
read with Babel at start-up (no compiled .mo files to forget). The msgid is the English text itself
(the gettext convention): code reads naturally, and a text missing from a catalog still shows in
English. Placeholders are named `{name}` fields, filled with `str.format`. Command names, option names
and choice names are looked up under a msgctxt (`command name`, `option name`, `choice name`) because
Discord's rules for them differ from ordinary text.

    from bot.core.i18n import t, nt, N_
    t("zh-CN", "Cancelled request #{id}.", id=42)      # a text in the reader's language
    nt("zh-CN", "{count} image", "{count} images", 3)    # plurals by the language's own rule (ngettext)
    BUSY = N_("The bot is busy.")                       # a constant, marked for the catalog checks
    t(locale, BUSY)

The core does not call `t()` for texts a member reads later: it makes a `bot.core.texts.Text` (a msgid
and its parameters), which the edge renders in the reader's language.

A Discord locale (`zh-CN`, `en-US`, `pt-BR`, …) is mapped to a catalog by a fallback chain:
`zh-CN` → `zh_CN` → `zh` → `en`. Operator-facing text (logs, CLI output) is not translated.
"""

from __future__ import annotations

import functools
import gettext
import logging
from collections.abc import Callable
from pathlib import Path

from babel.messages.pofile import read_po

log = logging.getLogger(__name__)

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "messages"
SOURCE_LANGUAGE = "en"

# msgctxt of the names Discord shows for commands (lowercase, 1-32 characters, no spaces).
COMMAND_NAME = "command name"
OPTION_NAME = "option name"
CHOICE_NAME = "choice name"
# A context menu's name (the Apps menu of a message or user) follows other rules: 1-32 characters,
# spaces and capitals allowed ("Use as reference").
CONTEXT_MENU_NAME = "context menu name"

Key = tuple[str | None, str]  # (msgctxt, msgid)


def N_(text: str) -> str:
    """Marks a constant as a catalog text; `t()` translates it where it is shown."""
    return text


def catalog_path(language: str) -> Path:
    return LOCALES_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


class LanguageCatalog(dict[Key, str]):
    """One language's texts as {(msgctxt, msgid): translation}, with its plural entries apart:
    {(msgctxt, singular msgid): every plural form} and the language's rule for choosing one."""

    def __init__(self) -> None:
        super().__init__()
        self.plurals: dict[Key, tuple[str, ...]] = {}
        self.plural_index: Callable[[int], int] = _english_plural


def _english_plural(n: int) -> int:
    return 0 if n == 1 else 1


def read_catalog(path: Path) -> LanguageCatalog:
    """One .po file; untranslated and fuzzy entries are left out, so they fall back to English
    instead of showing an empty or stale text. Plural entries keep all their forms, chosen with the
    catalog's own Plural-Forms rule (the standard library's gettext compiles it)."""
    with path.open("rb") as handle:
        catalog = read_po(handle)
    texts = LanguageCatalog()
    texts.plural_index = gettext.c2py(catalog.plural_expr)
    for message in catalog:
        if not message.id or message.fuzzy:
            continue
        if isinstance(message.id, str):
            if isinstance(message.string, str) and message.string:
                texts[(message.context, message.id)] = message.string
        elif isinstance(message.string, tuple) and all(message.string):
            texts.plurals[(message.context, message.id[0])] = tuple(message.string)
    return texts


@functools.cache
def catalogs() -> dict[str, LanguageCatalog]:
    """Every shipped language, read once per process: a language is a directory with a .po file."""
    found: dict[str, LanguageCatalog] = {}
    for path in sorted(LOCALES_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        found[path.parent.parent.name] = read_catalog(path)
    return found


def languages() -> list[str]:
    return sorted(catalogs())


def language_for(locale: object) -> str:
    """The catalog for a Discord locale (`discord.Locale` or its value), along the fallback chain
    `zh-CN` → `zh_CN` → `zh` → English. None or an unknown locale gives English."""
    if locale is None:
        return SOURCE_LANGUAGE
    value = str(getattr(locale, "value", locale)).strip().replace("-", "_")
    shipped = catalogs()
    candidates = [value, value.split("_", 1)[0]]
    lowered = {name.lower(): name for name in shipped}
    for candidate in candidates:
        if candidate in shipped:
            return candidate
        if candidate.lower() in lowered:
            return lowered[candidate.lower()]
    return SOURCE_LANGUAGE


def lookup(locale: object, text: str, context: str | None = None) -> str | None:
    """The translation of `text` for `locale`, or None where the catalog has none."""
    catalog = catalogs().get(language_for(locale))
    return catalog.get((context, text)) if catalog is not None else None


def t(locale: object, text: str, /, *, context: str | None = None, **params: object) -> str:
    """`text` (an English msgid) in the language of `locale`, with its `{name}` fields filled in.

    A translation whose placeholders do not match (a broken catalog entry) falls back to English
    rather than failing the message: the catalog test catches it before release."""
    translated = lookup(locale, text, context) or text
    if not params:
        return translated
    try:
        return translated.format(**params)
    except (KeyError, IndexError, ValueError):
        log.error("catalog entry for %r in %s has bad placeholders", text, language_for(locale))
        return text.format(**params)


def nt(
    locale: object, singular: str, plural: str, n: int, /, *, context: str | None = None, **params: object
) -> str:
    """ngettext: the form of `singular`/`plural` that the reader's language uses for `n`, filled in
    (with `count=n` unless given). English has two forms; Chinese one; others more."""
    params.setdefault("count", n)
    catalog = catalogs().get(language_for(locale))
    forms = catalog.plurals.get((context, singular)) if catalog is not None else None
    if forms:
        index = catalog.plural_index(n) if catalog is not None else 0
        chosen = forms[min(index, len(forms) - 1)]
    else:
        chosen = singular if n == 1 else plural
    try:
        return chosen.format(**params)
    except (KeyError, IndexError, ValueError):
        log.error("catalog entry for %r in %s has bad placeholders", singular, language_for(locale))
        return (singular if n == 1 else plural).format(**params)
