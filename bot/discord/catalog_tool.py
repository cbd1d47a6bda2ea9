"""`python -m bot.discord.catalog_tool` (or `make messages`): bring the message catalogs up to date.

It collects every catalog text the code uses — the second argument of `t(locale, "...")` and every
`N_("...")` in `bot/` and `cogs/` (Babel's Python extractor), and every command name, description,
option and choice of the command tree (through a Translator that records what discord.py asks for) —
then, in each `bot/locales/<lang>/LC_MESSAGES/messages.po`:

- adds the texts it lacks (English: the text itself; other languages: an empty translation, which the
  catalog test reports until someone translates it),
- with `--prune`, removes entries nothing uses any more.

`--check` changes nothing and exits 1 if a catalog lacks a text or keeps an unused one.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import discord
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po, write_po
from discord import app_commands
from discord.ext import commands

from bot.core.i18n import LOCALES_DIR, SOURCE_LANGUAGE, Key, catalog_path
from bot.discord.translator import catalog_context

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("bot", "cogs")
# t(locale, "msgid"), N_("msgid"), msg("msgid", …) and the plurals nt(locale, "one", "many", n) and
# plural_msg("one", "many", n, …): Babel reads a plural as the tuple (singular, plural).
KEYWORDS: dict[str, Any] = {"t": (2,), "N_": None, "msg": None, "nt": (2, 3), "plural_msg": (1, 2)}
# The plural msgid of each plural text found in the code, by (msgctxt, singular msgid).
PLURALS: dict[Key, str] = {}


def code_texts(root: Path = ROOT) -> dict[Key, list[str]]:
    """Every catalog text written in the code, with where it is (file:line)."""
    found: dict[Key, list[str]] = {}
    for folder in SOURCE_DIRS:
        for path in sorted((root / folder).rglob("*.py")):
            for line, extracted, _comments, context in extract_from_file(
                "python", str(path), keywords=KEYWORDS, options={"encoding": "utf-8"}
            ):
                message = extracted
                if isinstance(extracted, tuple) and extracted[0] and extracted[1]:
                    PLURALS[(context, extracted[0])] = extracted[1]
                    message = extracted[0]
                if isinstance(message, str) and message:
                    found.setdefault((context, message), []).append(f"{path.relative_to(root)}:{line}")
    return found


class _Recorder(app_commands.Translator):
    def __init__(self) -> None:
        self.seen: dict[Key, list[str]] = {}

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        where = f"command {getattr(context.data, 'qualified_name', getattr(context.data, 'name', '?'))}"
        key = (catalog_context(context.location, context.data), string.message)
        self.seen.setdefault(key, []).append(where)
        return None


async def command_texts() -> dict[Key, list[str]]:
    """Every string of the command tree that Discord shows (names, descriptions, options, choices)."""
    from bot.discord.client import EXTENSIONS  # noqa: PLC0415 - the bot module is heavy; only this tool needs it

    bot = commands.Bot(command_prefix=commands.when_mentioned, intents=discord.Intents.none())
    async with bot:
        for extension in EXTENSIONS:
            await bot.load_extension(extension)
        recorder = _Recorder()
        for command in bot.tree.get_commands():
            # One locale is enough: the recorder sees every string once per locale asked.
            await command.get_translated_payload(bot.tree, _OneLocale(recorder))
        return recorder.seen


class _OneLocale(app_commands.Translator):
    """discord.py asks for every locale; record the strings once."""

    def __init__(self, inner: _Recorder) -> None:
        self.inner = inner

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        if locale is discord.Locale.american_english:
            await self.inner.translate(string, locale, context)
        return None


async def used_texts() -> dict[Key, list[str]]:
    used = code_texts()
    for key, where in (await command_texts()).items():
        used.setdefault(key, []).extend(where)
    return used


def read_catalog_file(language: str) -> Catalog:
    with catalog_path(language).open("rb") as handle:
        return read_po(handle, locale=language.replace("-", "_"))


def _keys(catalog: Catalog) -> Iterator[Key]:
    """Every entry's key; a plural entry is known by its singular msgid."""
    for message in catalog:
        if message.id and isinstance(message.id, str):
            yield (message.context, message.id)
        elif message.id and isinstance(message.id, tuple):
            yield (message.context, message.id[0])


def _make_plurals(catalog: Catalog, language: str) -> bool:
    """Entries the code now asks for as plurals become plural entries, keeping their translations: the
    singular's for the first form, the translation the plural text had on its own for the others."""
    changed = False
    for (context, singular), plural in PLURALS.items():
        entry = catalog.get(singular, context=context)
        if entry is None or isinstance(entry.id, tuple):
            continue
        if language == SOURCE_LANGUAGE:
            forms: tuple[str, ...] = (singular, plural)
        else:
            other = catalog.get(plural, context=context)
            other_text = other.string if other is not None and isinstance(other.string, str) else ""
            if catalog.num_plurals == 1:
                forms = (other_text,)
            else:
                forms = (str(entry.string or ""), *([other_text] * (catalog.num_plurals - 1)))
        locations, comments = entry.locations, entry.auto_comments
        catalog.delete(singular, context=context)
        catalog.add((singular, plural), forms, locations=locations, auto_comments=comments, context=context)
        changed = True
    return changed


def update(language: str, used: dict[Key, list[str]], *, prune: bool) -> tuple[list[Key], list[Key]]:
    """Add what the catalog lacks (and with `prune`, drop what nothing uses); returns (added, unused)."""
    catalog = read_catalog_file(language)
    made_plural = _make_plurals(catalog, language)
    present = set(_keys(catalog))
    added = [key for key in used if key not in present]
    unused = [key for key in present if key not in used]
    for context, text in added:
        where = [(place.rsplit(":", 1)[0], 0) for place in used[(context, text)][:3]]
        plural = PLURALS.get((context, text))
        msgid: str | tuple[str, str] = text if plural is None else (text, plural)
        string: str | tuple[str, ...]
        if plural is None:
            string = text if language == SOURCE_LANGUAGE else ""
        else:
            string = (text, plural) if language == SOURCE_LANGUAGE else ("",) * catalog.num_plurals
        catalog.add(msgid, string, locations=[(p, n) for p, n in where], context=context)
    if prune:
        for context, text in unused:
            entry = next((m.id for m in catalog if isinstance(m.id, tuple) and m.id[0] == text), text)
            catalog.delete(entry, context=context)
    if added or (prune and unused) or made_plural:
        with catalog_path(language).open("wb") as handle:
            write_po(handle, catalog, width=110, omit_header=False, include_lineno=False)
    return added, unused


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.discord.catalog_tool", description=__doc__)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if out of date")
    parser.add_argument("--prune", action="store_true", help="remove entries nothing uses any more")
    args = parser.parse_args(argv)
    used = asyncio.run(used_texts())
    languages = sorted(p.parent.parent.name for p in LOCALES_DIR.glob("*/LC_MESSAGES/messages.po"))
    stale = False
    for language in languages:
        if args.check:
            present = set(_keys(read_catalog_file(language)))
            added = [key for key in used if key not in present]
            unused = [key for key in present if key not in used]
        else:
            added, unused = update(language, used, prune=args.prune)
        stale = stale or bool(added or unused)
        verb = "lacks" if args.check else "added"
        print(f"{language}: {verb} {len(added)}, unused {len(unused)}")
        for context, text in [*added, *unused][:20]:
            sign = "+" if (context, text) in added else "-"
            print(f"    {sign} {context + ': ' if context else ''}{text[:90]}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
