"""Reading texts written before texts were data: an English sentence the bot stored or passed on
(a job's failure reason in the database), matched back to the catalog text it was filled from.

Only for what is already stored: the migration that turns stored reasons into `Text` (bot/core/texts.py)
uses `text_from_english` once, at upgrade. Nothing reads English back at run time any more: new code
never needs this module.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from bot.core.i18n import SOURCE_LANGUAGE, catalogs, lookup
from bot.core.texts import Param, Text

_FIELD = re.compile(r"\{(\w+)\}")


# Texts longer than this are never filled templates (refusals and failure reasons are short): a long
# report is not searched for one, so a private answer costs no regex work.
_TEMPLATE_TEXT_LIMIT = 1000


@dataclass(frozen=True)
class _Template:
    text: str
    pattern: re.Pattern[str]
    head: str  # the fixed text before the first placeholder
    tail: str  # and after the last
    fixed: tuple[str, ...]  # every fixed piece, for a cheap test before the regex

    def match(self, english: str) -> dict[str, str] | None:
        if not (english.startswith(self.head) and english.endswith(self.tail)):
            return None
        if not all(piece in english for piece in self.fixed):
            return None
        found = self.pattern.fullmatch(english)
        return found.groupdict() if found else None


@functools.cache
def _templates() -> list[_Template]:
    """Every English catalog text with placeholders, as a pattern that recovers their values; the most
    specific (longest fixed text) first."""
    found: list[_Template] = []
    for context, text in catalogs().get(SOURCE_LANGUAGE, {}):
        if context is not None or not _FIELD.search(text):
            continue
        pattern, position, seen, pieces = "", 0, set(), []
        for field in _FIELD.finditer(text):
            pieces.append(text[position : field.start()])
            pattern += re.escape(pieces[-1])
            name = field.group(1)
            pattern += f"(?P={name})" if name in seen else f"(?P<{name}>.*?)"
            seen.add(name)
            position = field.end()
        pieces.append(text[position:])
        pattern += re.escape(pieces[-1])
        fixed = tuple(piece for piece in pieces if piece)
        found.append(_Template(text, re.compile(pattern, re.DOTALL), pieces[0], pieces[-1], fixed))
    found.sort(key=lambda template: -sum(map(len, template.fixed)))
    return found


def text_from_english(english: str, *, _depth: int = 0) -> Text | None:
    """The catalog text an English sentence was made from, with its values (themselves texts where
    they were catalog texts); None for anything else (the image API's own words)."""
    if not english:
        return None
    if lookup(SOURCE_LANGUAGE, english) is not None:
        return Text(english)
    if _depth > 2 or len(english) > _TEMPLATE_TEXT_LIMIT:
        return None
    for template in _templates():
        values = template.match(english)
        if values is None:
            continue
        params: list[tuple[str, Param]] = []
        for name, value in values.items():
            nested = text_from_english(value, _depth=_depth + 1)
            params.append((name, nested if nested is not None else value))
        return Text(template.text, tuple(params))
    return None
