"""Languages: the catalogs are complete and agree with the code, and a member's / server's Discord
locale decides the language of what they read, through the real bot and the fake Discord."""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path
from typing import Any

import discord
import pytest
from babel.messages.pofile import read_po
from discord import app_commands

from bot.adapters.store import Store
from bot.core import i18n, messages
from bot.core.legacy_texts import text_from_english
from bot.core.models import ImageRequest, Job, JobStatus, Origin
from bot.core.texts import Verbatim, from_stored, msg, stored
from bot.discord.catalog_tool import code_texts, command_texts
from bot.discord.translator import CatalogTranslator
from tests.bot_harness import EPHEMERAL, World, wait_for_job

ROOT = Path(__file__).resolve().parents[1]
LANGUAGES = i18n.languages()


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def po_entries(language: str) -> list[Any]:
    with i18n.catalog_path(language).open("rb") as handle:
        return [m for m in read_po(handle) if m.id]


# -- the catalogs ------------------------------------------------------------------------------------


def test_english_and_simplified_chinese_are_shipped() -> None:
    assert {"en", "zh_CN"} <= set(LANGUAGES)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_text_is_translated_with_the_same_placeholders(language: str) -> None:
    english = {(m.context, m.id) for m in po_entries("en")}
    entries = po_entries(language)
    keys = {(m.context, m.id) for m in entries}  # a plural's key is its (singular, plural) pair
    assert keys - english == set(), f"{language} has texts English lacks"
    assert english - keys == set(), f"{language} lacks texts"
    problems = []
    for m in entries:
        if isinstance(m.id, tuple):  # a plural (ngettext): every form of the language, each filled
            problems += plural_problems(m)
        elif not isinstance(m.string, str) or not m.string.strip():
            problems.append(f"empty: {m.id!r}")
        elif m.fuzzy:
            problems.append(f"fuzzy: {m.id!r}")
        elif fields(m.string) != fields(m.id):
            problems.append(f"placeholders {sorted(fields(m.string))} != {sorted(fields(m.id))}: {m.id!r}")
    assert problems == []


def plural_problems(m: Any) -> list[str]:
    """A plural's forms may leave out `{count}` (English "an image"), nothing else, and add nothing."""
    forms = m.string if isinstance(m.string, tuple) else (m.string,)
    allowed = fields(m.id[0]) | fields(m.id[1])
    needed = allowed - {"count"}
    problems = []
    for form in forms:
        if not form or not form.strip():
            problems.append(f"empty plural form: {m.id[0]!r}")
        elif not needed <= fields(form) <= allowed:
            problems.append(f"plural placeholders {sorted(fields(form))} vs {sorted(allowed)}: {m.id[0]!r}")
    return problems or (["fuzzy: " + repr(m.id[0])] if m.fuzzy else [])


def test_plurals_follow_each_languages_rule() -> None:
    """ngettext through the catalog: English has two forms, Chinese one (its count is in the text)."""
    one = i18n.nt("en", "1 reference image", "{count} reference images", 1)
    three = i18n.nt("en", "1 reference image", "{count} reference images", 3)
    assert (one, three) == ("1 reference image", "3 reference images")
    assert i18n.nt("zh-CN", "1 reference image", "{count} reference images", 3) == "3 张参考图"
    assert i18n.nt("zh-CN", "1 reference image", "{count} reference images", 1) == "1 张参考图"


@pytest.mark.parametrize("language", LANGUAGES)
def test_command_names_follow_discords_rules(language: str) -> None:
    """Lowercase, 1-32 characters, letters/digits of any script, '-' and '_'."""
    names = [m for m in po_entries(language) if m.context in (i18n.COMMAND_NAME, i18n.OPTION_NAME)]
    assert names
    bad = [
        m.string for m in names if not re.fullmatch(r"[-_\w]{1,32}", m.string) or m.string != m.string.lower()
    ]
    assert bad == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_context_menu_names_follow_discords_rules(language: str) -> None:
    """A context menu's name may hold spaces and capitals ("Use as reference"), 1-32 characters."""
    names = [m for m in po_entries(language) if m.context == i18n.CONTEXT_MENU_NAME]
    assert names
    bad = [m.string for m in names if not 1 <= len(m.string) <= 32 or m.string != m.string.strip()]
    assert bad == []


async def _menu_callback(interaction: discord.Interaction[Any], message: discord.Message) -> None:
    """A context menu needs a callback with these annotations; it is never called here."""


async def test_the_translator_files_a_context_menu_name_apart_from_command_names() -> None:
    """discord.py asks for a context menu's name as a `command_name`: it is looked up under its own
    msgctxt, so it keeps its spaces and capitals, and a command name's entry is never used for it."""
    menu = app_commands.ContextMenu(name="Use as reference", callback=_menu_callback)
    tree = app_commands.CommandTree(discord.Client(intents=discord.Intents.none()))
    payload = await menu.get_translated_payload(tree, CatalogTranslator())
    chinese = payload["name_localizations"]["zh-CN"]
    assert chinese == i18n.t("zh-CN", "Use as reference", context=i18n.CONTEXT_MENU_NAME)
    assert chinese != "Use as reference"
    assert "en-US" not in payload["name_localizations"]


def test_a_placeholder_mismatch_is_caught(tmp_path: Path) -> None:
    """The check above fails on a missing or an extra placeholder (the test of the test)."""
    broken = tmp_path / "messages.po"
    broken.write_text('msgid "Cancelled request #{id}."\nmsgstr "已取消请求 #{number}。"\n', encoding="utf-8")
    [entry] = [m for m in read_po(broken.open("rb")) if m.id]
    assert fields(entry.string) != fields(entry.id)


async def test_the_catalogs_hold_exactly_what_the_code_and_commands_use() -> None:
    """`make messages` is up to date: no text the code asks for is missing, none is left unused."""
    used = set(code_texts()) | set(await command_texts())
    for language in LANGUAGES:
        present = {(m.context, m.id[0] if isinstance(m.id, tuple) else m.id) for m in po_entries(language)}
        assert sorted(used - present, key=str) == [], f"{language}: run `make messages` and translate"
        assert sorted(present - used, key=str) == [], f"{language}: run `make messages` with PRUNE=1"


# Prose: two words with a space between them (custom ids, patterns and URLs have none).
_PROSE = re.compile(r"[A-Za-z]{2,}[,;:]? [A-Za-z]{2,}")
MEMBER_FACING = [
    "bot/core/messages.py",
    "bot/discord/replies.py",
    "bot/discord/checks.py",
    "bot/discord/requests.py",
    "bot/discord/views.py",
    "bot/discord/sink.py",
    "bot/discord/delivery_routes.py",
    "bot/discord/route_planner.py",
    "cogs/imagine.py",
    "cogs/queue.py",
    "cogs/usage.py",
    "cogs/admin_moderation.py",
    "bot/discord/client.py",
    "cogs/admin_limits.py",
    "bot/discord/admin.py",
    "bot/discord/places.py",
    "bot/discord/reference_menu.py",
    "bot/discord/stopping.py",
    "bot/discord/style_autocomplete.py",
    "bot/core/policy/styles.py",
    "cogs/settings.py",
    "cogs/admin_styles.py",
    "cogs/reference.py",
    "cogs/admin_reports.py",
    "bot/core/reports.py",
    "bot/adapters/media.py",
]
# Strings in those files that are not shown to members (or are names Discord localizes through the
# Translator): each one is listed, so a new member-facing text cannot slip by unnoticed.
# Functions whose texts are for operators (/healthz), not members.
OPERATOR_FUNCTIONS = {"health_problems"}
ALLOWED = {
    "Discord did not accept the acknowledgement in time.",  # a job abandoned with nobody to tell
    "Use as reference",  # a context menu's name: the Translator localizes it (msgctxt "context menu name")
    "View Channel",
    "Send Messages",
    "Embed Links",
    "Attach Files",
    "Read Message History",
}


def _catalog_texts() -> set[str]:
    return {text for _, text in i18n.catalogs()[i18n.SOURCE_LANGUAGE]}


def _prose_outside_catalog(path: Path) -> list[str]:
    """String literals that read like sentences and are not catalog texts: not inside t()/N_(), a
    log call, a docstring, a decorator (command texts go through the Translator) or an exception."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            owner = getattr(func.value, "id", "") if isinstance(func, ast.Attribute) else ""
            # Command and group texts (Group, Choice, decorators) go through the Translator.
            if (
                name in {"t", "nt", "N_", "msg", "plural_msg", "Text", "Choice", "Group"}
                or owner == "log"
                or name in {"getLogger", "Route"}
            ):
                skip |= {id(n) for n in ast.walk(node)}
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.name in OPERATOR_FUNCTIONS:
                skip |= {id(n) for n in ast.walk(node)}
            for decorator in node.decorator_list:
                skip |= {id(n) for n in ast.walk(decorator)}
        elif isinstance(node, ast.Raise | ast.Assert):
            skip |= {id(n) for n in ast.walk(node)}
        elif isinstance(node, ast.Expr):  # docstrings, of modules, classes, functions and attributes
            skip.add(id(node.value))
    found = []
    for node in ast.walk(tree):
        if id(node) in skip or not isinstance(node, ast.Constant) or not isinstance(node.value, str):
            continue
        text = node.value.strip()
        # A literal that is a catalog text already (a command group's description) is in the catalog.
        if not _PROSE.search(text) or text in ALLOWED or node.value in _catalog_texts():
            continue
        where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
        found.append(f"{where}:{node.lineno}: {text[:70]!r}")
    return found


def test_member_facing_modules_have_no_text_outside_the_catalog() -> None:
    """A heuristic checker for merges: an English sentence in a member-facing module that does not go
    through `t()`/`N_()` is reported with its line. Extend MEMBER_FACING with new modules."""
    found = [line for name in MEMBER_FACING for line in _prose_outside_catalog(ROOT / name)]
    assert found == []


def test_the_checker_finds_a_plain_english_reply(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        'async def f(i):\n    """Doc string."""\n    log.info("a log line here")\n'
        '    await say(i, t(i.locale, "Already in the catalog"))\n'
        '    await say(i, "Your images are ready now")\n',
        encoding="utf-8",
    )
    found = [line.split(": ", 1)[1] for line in _prose_outside_catalog(sample)]
    assert found == ["'Your images are ready now'"]


def test_the_fake_discord_refuses_localized_names_discord_would_refuse() -> None:
    from testing.fake_discord import _command_name_problems

    good = {"name": "imagine", "name_localizations": {"zh-CN": "画图"}, "description": "x"}
    bad = {
        "name": "imagine",
        "name_localizations": {"zh-CN": "画 图", "de": "Bild"},
        "options": [{"name": "prompt", "name_localizations": {"fr": "x" * 33}, "type": 3}],
    }
    assert _command_name_problems(good) == []
    assert len(_command_name_problems(bad)) == 3
    # A message context menu may have spaces and capitals, but not more than 32 characters.
    menu = {"name": "Use as reference", "type": 3, "name_localizations": {"zh-CN": "用作参考图"}}
    assert _command_name_problems(menu) == []
    assert len(_command_name_problems({**menu, "name_localizations": {"de": "x" * 33}})) == 1


# -- choosing the language ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "language"),
    [
        ("zh-CN", "zh_CN"),
        ("en-US", "en"),
        ("en-GB", "en"),
        ("fr", "en"),
        ("zh-TW", "en"),
        (None, "en"),
        ("", "en"),
    ],
)
def test_a_discord_locale_maps_to_a_catalog_with_fallback(locale: str | None, language: str) -> None:
    assert i18n.language_for(locale) == language


def test_an_unknown_locale_reads_english() -> None:
    assert i18n.t("fr", "Cancelled request #{id}.", id=7) == "Cancelled request #7."
    assert i18n.t("zh-CN", "Cancelled request #{id}.", id=7) == "已取消请求 #7。"


def test_english_stored_before_texts_were_data_reads_translated() -> None:
    """A reason stored in English by an earlier version, filled from a template, is matched back to its
    text (values that were catalog texts become texts too); the API's own words stay as they came."""
    resets = "Your quota resets <t:100:R> (<t:100:t>)."
    refusal = f"You have used all 3 of today's images. {resets}"
    text = text_from_english(refusal)
    assert text is not None and text.render("zh-CN") == (
        "你今天的 3 张图片额度已全部用完。你的额度将于 <t:100:R>（<t:100:t>）重置。"
    )
    assert text.english() == refusal and from_stored(stored(text)) == text
    api = text_from_english("The image service could not make this image: NSFW content detected")
    assert api is not None and api.render("zh-CN") == "图像服务无法生成这张图片：NSFW content detected"
    assert text_from_english("Some words from the API") is None


def test_translated_text_keeps_the_same_safety() -> None:
    """API words inside a translated failure are still inert, and the whole message clipped."""
    from tests.test_text_safety import live_markup

    job = Job(
        1,
        "discord",
        JobStatus.FAILED,
        "a cat",
        None,
        [],
        1,
        2,
        3,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        0.0,
        None,
        None,
        None,
        0,
        0,
        None,
        None,
    )

    def reason(words: str) -> str:
        return stored(msg("The image service could not make this image: {why}", why=Verbatim(words)))

    text = messages.failure_text(job, reason("[click](https://x.example) @everyone"), "zh-CN")
    assert "图像服务无法生成这张图片" in text
    assert live_markup(text.split("\n")[0].replace("<@3>", "")) == []
    long = messages.failure_text(job, reason("很" * 5000), "zh-CN")
    assert len(long) <= messages.MESSAGE_LIMIT


async def test_the_job_keeps_both_locales(any_store: Store) -> None:
    origin = Origin(source="discord", guild_id=9, channel_id=5, user_id=1, locale="zh-CN", guild_locale="ja")
    created = await any_store.jobs.create(ImageRequest("a cat", None, ()), origin, 1000.0)
    job = await any_store.jobs.get(created.id)
    assert job is not None and (job.locale, job.guild_locale) == ("zh-CN", "ja")


# -- through the fake Discord -------------------------------------------------------------------------


def _labels(body: dict[str, Any]) -> list[str]:
    return [c.get("label", "") for row in body.get("components") or [] for c in row.get("components", [])]


async def test_a_whole_imagine_in_simplified_chinese(world: World) -> None:
    fake = world.fake
    fake.guilds[fake.guild_id].locale = "zh-CN"
    async with world.bot(default_daily_quota=1) as bot:
        # The commands synced to the server carry their Chinese names and descriptions.
        [imagine] = [c for c in fake.commands[fake.guild_id] if c["name"] == "imagine"]
        assert imagine["name_localizations"]["zh-CN"] == "画图"
        assert imagine["description_localizations"]["zh-CN"].startswith("根据提示词")
        prompt_option = next(o for o in imagine["options"] if o["name"] == "prompt")
        assert prompt_option["name_localizations"]["zh-CN"] == "提示词"
        ratio = next(o for o in imagine["options"] if o["name"] == "aspect_ratio")
        assert {c["name_localizations"]["zh-CN"] for c in ratio["choices"]} >= {"宽屏 16:9", "方形 1:1"}
        assert "fr" not in imagine.get("name_localizations", {})

        interaction = await fake.invoke_slash(
            "imagine", {"prompt": "a red fox in snow", "aspect_ratio": "16:9"}, locale="zh-CN"
        )
        job = await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED)
        assert (job.locale, job.guild_locale) == ("zh-CN", "zh-CN")

        # A second request is over the quota of 1: refused privately, in the member's language.
        refused = await fake.invoke_slash("imagine", {"prompt": "another fox"}, locale="zh-CN")
        callback = await fake.wait_for_callback(refused)
        await world.settle(bot)

    edits = [
        r.json
        for r in fake.requests
        if r.method == "PATCH" and f"/{interaction.token}/messages/" in r.path and isinstance(r.json, dict)
    ]
    assert any("**排队中**" in e.get("content", "") or "**已提交**" in e.get("content", "") for e in edits)
    assert any(_labels(e) == ["取消"] for e in edits)
    [post] = world.bot_posts()
    content = post.json["content"]
    assert "这是你的图片" in content and "宽高比：16:9" in content and "a red fox in snow" in content
    assert _labels(post.json) == ["重新生成", "编辑", "删除", "制作视频"]
    final = fake.messages[interaction.original_message_id or 0]["content"]
    assert final.startswith("✅ **完成**")

    assert callback.json["data"]["flags"] & EPHEMERAL
    assert "今天的 1 张图片额度已全部用完" in callback.json["data"]["content"]


async def test_a_private_answer_follows_the_member_and_english_is_the_fallback(world: World) -> None:
    fake = world.fake
    fake.guilds[fake.guild_id].locale = "zh-CN"
    async with world.bot():
        french = await fake.invoke_slash("queue", locale="fr")
        chinese = await fake.invoke_slash("queue", locale="zh-CN")
        plain = await fake.invoke_slash("queue")
        answers = [
            (await fake.wait_for_callback(i)).json["data"]["content"] for i in (french, chinese, plain)
        ]
    # The server's language does not decide a private answer: the member's does, else English.
    assert answers == [
        "You have nothing in progress.",
        "你目前没有正在进行的请求。",
        "You have nothing in progress.",
    ]
    assert plain.payload["locale"] == "en-US"  # the fake's default, as existing tests expect English


async def test_a_private_image_is_in_the_requesters_language_and_its_pointer_in_the_servers(
    world: World,
) -> None:
    """An English server, a member whose Discord is in Chinese: /settings answers in Chinese, the image
    only they see (and its buttons) is in Chinese, the status message the channel sees in English."""
    fake = world.fake
    async with world.bot() as bot:
        menus = {c["name"]: c for c in fake.commands[fake.guild_id] if c.get("type") == 3}
        assert menus["Use as reference"]["name_localizations"]["zh-CN"] == "用作参考图"
        assert menus["Animate"]["name_localizations"]["zh-CN"] == "制作视频"
        allowed = await fake.invoke_slash(
            "imagine-admin", {"enabled": True}, subcommand="private-images", user_id=fake.moderator_id
        )
        assert "**privately**" in (await fake.wait_for_callback(allowed)).json["data"]["content"]
        chosen = await fake.invoke_slash("settings", {"delivery": "ephemeral"}, locale="zh-CN")
        shown = (await fake.wait_for_callback(chosen)).json["data"]["content"]
        assert "⚙️ 你在这个服务器的设置" in shown and "• 生成的图片：私下发送" in shown
        status = await fake.invoke_slash("imagine", {"prompt": "only for me"}, locale="zh-CN")
        job = await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED)
    assert job.delivery == "ephemeral" and job.result_message_id is not None
    private = fake.messages[job.result_message_id]
    assert "这是你的图片" in private["content"] and _labels(private) == ["重新生成", "编辑", "制作视频"]
    pointer = fake.messages[status.original_message_id or 0]["content"]
    assert pointer.startswith("✅ **Done**") and "sent to the requester privately" in pointer


async def test_personal_use_is_all_in_the_requesters_language(world: World) -> None:
    """The app installed to a member's account, used in an English server without the bot: the
    image and its status are the member's (Chinese), and so is the personal-quota refusal."""
    fake = world.fake
    elsewhere = fake.add_guild("Somewhere Else", with_bot=False)
    async with world.bot(default_personal_quota=1) as bot:
        interaction = await fake.invoke_slash(
            "imagine", {"prompt": "a red fox"}, guild_id=elsewhere, user_install=True, locale="zh-CN"
        )
        job = await wait_for_job(bot, lambda j: j.delivered_at is not None)
        again = await fake.invoke_slash(
            "imagine", {"prompt": "a blue fox"}, guild_id=elsewhere, user_install=True, locale="zh-CN"
        )
        refused = (await fake.wait_for_callback(again)).json["data"]["content"]
    assert (job.locale, job.guild_locale) == ("zh-CN", "zh-CN")
    path = f"/webhooks/{fake.application_id}/{interaction.token}"
    [image] = [r.json for r in fake.requests if r.method == "POST" and r.path.startswith(path) and r.files]
    assert "这是你的图片" in image["content"] and _labels(image) == ["重新生成", "编辑", "删除", "制作视频"]
    assert fake.messages[interaction.original_message_id or 0]["content"].startswith("✅ **完成**")
    assert refused.startswith("你今天的 1 张个人图片已全部用完")


async def test_moderator_reports_follow_the_moderators_language(world: World) -> None:
    """/imagine-admin settings, stats and export answer in the moderator's language; the formatter
    the operator's `python -m bot stats` shares stays English (no locale)."""
    fake = world.fake

    async def admin(subcommand: str, options: dict[str, Any], locale: str = "zh-CN") -> str:
        interaction = await fake.invoke_slash(
            "imagine-admin", options, subcommand=subcommand, user_id=fake.moderator_id, locale=locale
        )
        answer = (await fake.wait_for_callback(interaction)).json
        if answer["type"] == 5:  # deferred: the report follows on the interaction's webhook
            path = f"/webhooks/{fake.application_id}/{interaction.token}"
            followup = await fake.wait_for_request(lambda r: r.method == "POST" and r.path == path)
            return str(followup.json["content"])
        return str(answer["data"]["content"])

    async with world.bot():
        settings = await admin("settings", {})
        stats = await admin("stats", {})
        export = await admin("export", {"start": "yesterday", "end": "2025-01-01"})
        english = await admin("settings", {}, locale="en-GB")
    assert settings.startswith("⚙️ **本服务器的图像机器人设置**")
    assert "风格：0 个；私下发送图片：不允许" in settings and "管理日志：关闭" in settings
    assert "今天（自 UTC 00:00 起）" in stats and "最近 7 天" in stats and "被拒绝：0 次" in stats
    assert export.startswith("未导出任何内容：开始日期的格式应为 2025-01-31")
    assert english.startswith("⚙️ **Image bot settings for this server**")
    assert "Styles: 0; private images: not allowed" in english

    from bot.core import reports
    from bot.core.usage_records import Stats

    empty = Stats(0, 0, 0, {}, [])
    windows = [reports.Window(label, empty) for label, _ in reports.report_windows(0.0, 0.0, (1, 7))]
    cli = reports.stats_text(windows, title="Report", markdown=False)
    assert "Today (since 00:00 UTC)" in cli and "Last day" in cli and "Last 7 days" in cli


if __name__ == "__main__":
    import sys

    for name in sys.argv[1:] or MEMBER_FACING:
        for line in _prose_outside_catalog(ROOT / name):
            print(line)
