"""Texts as data: what the core says to a member, as a catalog message id and its parameters.

The core never formats a sentence a member reads later. A refusal, a job's failure reason or a report
line is a `Text` (msgid, parameters, and for plurals the plural msgid and the count), and the edge (the
Discord adapter, the terminal, the web pages) renders it in the reader's language with `render()`.
Parameters may themselves be texts (rendered in the same language) or `Verbatim`: the image API's own
words and other outside text, which are shown as they are and never looked up in a catalog.

A `Text` survives the database: `to_json()` / `from_json()` keep exactly what is needed to render it
in any language later, so a stored failure reason reads in the language of whoever looks at it.

    REFUSED = msg("The image service refused this request: {why}", why=Verbatim(api_words))
    render("zh-CN", REFUSED)
    render("en", plural_msg("{count} image", "{count} images", 3))
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypeAlias

from bot.core.i18n import SOURCE_LANGUAGE, nt, t


@dataclass(frozen=True, slots=True)
class Verbatim:
    """Text from outside the catalog (the image API's words, a member's prompt, a name): shown as is."""

    text: str

    def __str__(self) -> str:
        return self.text


Param: TypeAlias = "str | int | float | Text | Verbatim"


@dataclass(frozen=True, slots=True)
class Text:
    """A member-facing text before it has a language: a msgid, its parameters, an optional plural."""

    msgid: str
    params: tuple[tuple[str, Param], ...] = ()
    plural: str | None = None  # the plural msgid; the parameter `count` chooses the form

    def param(self, name: str) -> Param | None:
        return dict(self.params).get(name)

    def render(self, locale: object) -> str:
        # `context` is t()'s own keyword: a text's parameters never use that name.
        values: dict[str, Any] = {name: _render_param(locale, value) for name, value in self.params}
        if self.plural is not None:
            count = self.param("count")
            assert isinstance(count, int), f"plural text {self.msgid!r} needs an int `count`"
            return nt(locale, self.msgid, self.plural, count, **values)
        return t(locale, self.msgid, **values)

    def english(self) -> str:
        """The text in the source language: for logs, the CSV export and statistics."""
        return self.render(SOURCE_LANGUAGE)

    def __str__(self) -> str:  # logs and exceptions read English, never a repr
        return self.english()

    def to_json(self) -> str:
        return json.dumps(_encode(self), ensure_ascii=False, separators=(",", ":"))

    @staticmethod
    def from_json(raw: str) -> Text:
        decoded = _decode(json.loads(raw))
        if not isinstance(decoded, Text):
            raise TypeError("not a stored text")
        return decoded


def msg(msgid: str, /, **params: Param) -> Text:
    """A catalog text with its parameters (the catalog tool extracts `msg("…")` like `t()`)."""
    return Text(msgid, tuple(params.items()))


def plural_msg(singular: str, plural: str, count: int, /, **params: Param) -> Text:
    """A catalog text with a plural (ngettext): `{count}` is filled in and chooses the form."""
    return Text(singular, (("count", count), *params.items()), plural)


def render(locale: object, value: Text | Verbatim | str) -> str:
    """Any text for the reader: a `Text` in their language, anything else as it is."""
    if isinstance(value, Text):
        return value.render(locale)
    return str(value)


def _render_param(locale: object, value: Param) -> object:
    if isinstance(value, Text):
        return value.render(locale)
    if isinstance(value, Verbatim):
        return value.text
    return value


# Stored form: {"m": msgid, "p": {name: value}, "n": plural msgid}; a nested text is such an object,
# outside text {"v": "…"}. Short keys: reasons are stored with every failed job.
def _encode(value: Param) -> Any:
    if isinstance(value, Text):
        encoded: dict[str, Any] = {"m": value.msgid}
        if value.params:
            encoded["p"] = {name: _encode(v) for name, v in value.params}
        if value.plural is not None:
            encoded["n"] = value.plural
        return encoded
    if isinstance(value, Verbatim):
        return {"v": value.text}
    return value


def _decode(raw: Any) -> Param:
    if isinstance(raw, dict):
        if "v" in raw:
            return Verbatim(str(raw["v"]))
        msgid, params, plural = raw["m"], raw.get("p", {}), raw.get("n")
        if not isinstance(msgid, str) or not isinstance(params, dict) or not isinstance(plural, str | None):
            raise TypeError("not a stored text")
        return Text(msgid, tuple((str(name), _decode(v)) for name, v in params.items()), plural)
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise TypeError("not a stored text parameter")
    return raw


STORED_PREFIX = "{"


def stored(value: Text | str) -> str:
    """A reason as the database keeps it: a text as JSON, outside words (an old row) as they are."""
    return value.to_json() if isinstance(value, Text) else value


def from_stored(raw: str) -> Text | Verbatim:
    """A stored reason back: a text written by `stored()`, or a row from before texts were data (and
    the image API's words) as verbatim text."""
    if raw.startswith(STORED_PREFIX):
        try:
            return Text.from_json(raw)
        except (ValueError, KeyError, TypeError):
            pass
    return Verbatim(raw)
