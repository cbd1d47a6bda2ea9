"""zh-CN texts name commands as Chinese Discord clients show them, and keep moderators (Manage
Messages) apart from server admins (Manage Server): issue 19, item 17.

A Chinese client lists `/imagine-admin blocklist add` as `/画图管理 屏蔽词 添加` (the command names are
localized through the same catalog), so a text that cites the English path names a command the reader
cannot find. Both roles were once 管理员, which hid that `/imagine-admin` needs Manage Server.
"""

from __future__ import annotations

import re

from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po

from bot.core.i18n import catalog_path

ENGLISH_COMMANDS = ("imagine-admin", "imagine", "settings", "queue", "usage", "history")
MODERATOR, SERVER_ADMIN = "版主", "服务器管理员"


def zh_catalog() -> Catalog:
    with catalog_path("zh_CN").open("rb") as handle:
        return read_po(handle)


def texts(message: Message) -> tuple[str, str]:
    ids = message.id if isinstance(message.id, tuple) else (message.id,)
    strings = message.string if isinstance(message.string, tuple) else (message.string,)
    return " ".join(ids), " ".join(strings)


def member_texts(catalog: Catalog) -> list[tuple[str, str]]:
    return [texts(m) for m in catalog if m.id and not m.context]


def english_paths(text: str) -> list[list[str]]:
    return [m.group(1).split(" ") for m in re.finditer(r"(?<![\w/])/([a-z][a-z-]*(?: [a-z][a-z-]*)*)", text)]


def test_no_zh_text_cites_an_english_command_name() -> None:
    pattern = re.compile(r"(?<![\w/])/(" + "|".join(map(re.escape, ENGLISH_COMMANDS)) + r")\b")
    offenders = [zh for _, zh in member_texts(zh_catalog()) if pattern.search(zh)]
    assert offenders == []


def test_zh_command_paths_are_the_localized_paths_of_the_english_ones() -> None:
    catalog = zh_catalog()
    names = {m.id: m.string for m in catalog if m.context == "command name"}
    checked = 0
    for en, zh in member_texts(catalog):
        for path in english_paths(en):
            words = [w for w in path if w in names]
            if not words or path[0] not in ENGLISH_COMMANDS:
                continue
            # The command words of the English path, each in its catalog translation, in order.
            localized = "/" + " ".join(names[w] for w in path[: len(words)] if w in names)
            assert localized in zh, f"{en!r}: expected {localized!r} in {zh!r}"
            checked += 1
    assert checked >= 10  # the walk really meets the texts that cite commands


def test_moderators_and_server_admins_have_different_names() -> None:
    moderator_texts = server_admin_texts = 0
    for en, zh in member_texts(zh_catalog()):
        lowered = en.lower()
        if "moderator" in lowered:
            assert MODERATOR in zh and "管理员" not in zh, (en, zh)
            moderator_texts += 1
        if "server admin" in lowered:
            assert SERVER_ADMIN in zh and MODERATOR not in zh, (en, zh)
            server_admin_texts += 1
    assert moderator_texts >= 5 and server_admin_texts >= 1
