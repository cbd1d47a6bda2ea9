"""Server styles: the repository on both backends, the moderators' commands, /imagine's style option
with its autocomplete, and Reroll and Edit keeping the style."""

from __future__ import annotations

from typing import Any

import pytest

from bot.adapters.store import Store
from bot.core.image_contract import MAX_PROMPT_CHARS
from bot.core.models import JobStatus
from bot.core.policy.quotas import BLOCKED_TEXT
from bot.core.policy.styles import MAX_STYLES, Style, StyleError, clean_style
from bot.core.usage_records import EXPORT_COLUMNS
from tests.bot_harness import EPHEMERAL, World, wait_for_job
from tests.helpers import wait_until
from tests.test_living_messages import DEFERRED, MODAL

GUILD, MOD = 100, 7


async def test_styles_are_saved_listed_replaced_and_removed(any_store: Store) -> None:
    store = any_store
    assert await store.styles.add(GUILD, Style("Anime", "in anime style"), MOD, 1.0) is False
    assert await store.styles.add(GUILD, Style("watercolour", "soft watercolour"), MOD, 2.0) is False
    assert await store.styles.add(GUILD + 1, Style("Anime", "elsewhere"), MOD, 2.0) is False
    # Same name in another case: the text is replaced, there is still one style of that name.
    assert await store.styles.add(GUILD, Style("ANIME", "cel-shaded anime"), MOD, 3.0) is True
    listed = await store.styles.all(GUILD)
    assert [(s.name, s.text) for s in listed] == [
        ("ANIME", "cel-shaded anime"),
        ("watercolour", "soft watercolour"),
    ]
    found = await store.styles.get(GUILD, "anime")
    assert found is not None and found.text == "cel-shaded anime"
    removed = await store.styles.remove(GUILD, "Anime", MOD, 4.0)
    assert removed is not None and removed.name == "ANIME"
    assert await store.styles.remove(GUILD, "Anime", MOD, 5.0) is None
    assert [s.name for s in await store.styles.all(GUILD)] == ["watercolour"]
    assert [s.text for s in await store.styles.all(GUILD + 1)] == ["elsewhere"]
    actions = [(e.action, e.target) for e in await store.settings.admin_log(GUILD)]
    assert actions == [
        ("style_remove", "style:ANIME"),
        ("style_update", "style:ANIME"),
        ("style_add", "style:watercolour"),
        ("style_add", "style:Anime"),
    ]


async def test_a_server_has_at_most_max_styles(any_store: Store) -> None:
    for n in range(MAX_STYLES):
        await any_store.styles.add(GUILD, Style(f"s{n}", "text"), MOD, float(n))
    with pytest.raises(StyleError, match="remove one first"):
        await any_store.styles.add(GUILD, Style("one more", "text"), MOD, 99.0)
    await any_store.styles.add(GUILD, Style("S1", "replaced"), MOD, 100.0)  # replacing is still allowed
    assert len(await any_store.styles.all(GUILD)) == MAX_STYLES


async def test_member_settings_and_request_defaults(any_store: Store) -> None:
    store = any_store
    empty = await store.styles.request_defaults(GUILD, 1, None)
    assert empty.style is None and empty.settings.aspect_ratio is None and empty.deliver_to is None
    await store.styles.add(GUILD, Style("Noir", "black and white film noir"), MOD, 1.0)
    saved = await store.styles.save_member_settings(
        GUILD, 1, 2.0, aspect_ratio="16:9", style="Noir", delivery="dm"
    )
    assert (saved.aspect_ratio, saved.style, saved.delivery) == ("16:9", "Noir", "dm")
    defaults = await store.styles.request_defaults(GUILD, 1, None)
    assert defaults.style == Style("Noir", "black and white film noir", MOD, 1.0)
    assert defaults.deliver_to is None  # the server does not allow private images
    await store.settings.update_policy(GUILD, MOD, 3.0, private_images=True)
    assert (await store.styles.request_defaults(GUILD, 1, None)).deliver_to == "dm"
    assert (await store.styles.request_defaults(GUILD, 1, "missing")).style is None  # named: no fallback
    cleared = await store.styles.save_member_settings(GUILD, 1, 4.0, style=None)
    assert (cleared.aspect_ratio, cleared.style, cleared.delivery) == ("16:9", None, "dm")
    assert (await store.styles.member_settings(GUILD, 2)).aspect_ratio is None  # someone else


def test_style_names_and_texts_are_checked() -> None:
    assert clean_style("  Film   noir ", " black\nand white ") == Style("Film noir", "black and white")
    for name, text in (("", "x"), ("x" * 33, "x"), ("a`b", "x"), ("ok", " "), ("ok", "x" * 1001)):
        with pytest.raises(StyleError):
            clean_style(name, text)


# -- on Discord --------------------------------------------------------------------------------------


async def admin(world: World, subcommand: str, options: dict[str, Any]) -> str:
    fake = world.fake
    interaction = await fake.invoke_slash(
        "imagine-admin", options, subcommand=subcommand, user_id=fake.moderator_id
    )
    answer = (await fake.wait_for_callback(interaction)).json
    assert answer["data"]["flags"] & EPHEMERAL
    return str(answer["data"]["content"])


async def usage_rows(world: World, store: Store) -> list[dict[str, Any]]:
    rows = await store.usage.export(world.fake.guild_id, 0, 1e12, 100)
    return [dict(zip(EXPORT_COLUMNS, row, strict=True)) for row in rows]


async def test_styles_from_the_admin_commands_to_imagine_reroll_and_edit(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        assert "added" in await admin(
            world, "style add", {"name": "Noir", "text": "black and white film noir"}
        )
        assert "added" in await admin(world, "style add", {"name": "Anime", "text": "anime, cel shading"})
        listed = await admin(world, "style list", {})
        assert "`Anime`" in listed and "`Noir`" in listed and "cel shading" in listed

        typed = await fake.invoke_autocomplete("imagine", {"prompt": "a cat", "style": "no"}, "style")
        answer = (await fake.wait_for_callback(typed)).json
        assert answer["type"] == 8 and answer["data"]["choices"] == [{"name": "Noir", "value": "Noir"}]
        typed = await fake.invoke_autocomplete("imagine", {"prompt": "a cat", "style": ""}, "style")
        names = [c["name"] for c in (await fake.wait_for_callback(typed)).json["data"]["choices"]]
        assert names == ["Anime", "Noir"]

        await fake.invoke_slash("imagine", {"prompt": "a cat on a roof", "style": "noir"})
        job = await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED)
        assert (job.prompt, job.style) == ("a cat on a roof", "Noir")
        assert job.result_message_id is not None
        assert "Style: Noir" in fake.messages[job.result_message_id]["content"]

        # A moderator changing the style later does not change what Reroll and Edit make.
        await admin(world, "style add", {"name": "Noir", "text": "changed text"})
        click = await fake.invoke_component("imagine:reroll:1", job.result_message_id)
        assert (await fake.wait_for_callback(click)).json["type"] == DEFERRED
        await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED, job_id=2)

        click = await fake.invoke_component("imagine:edit:1", job.result_message_id)
        modal = (await fake.wait_for_callback(click)).json
        assert modal["type"] == MODAL
        inputs = [c for row in modal["data"]["components"] for c in row["components"]]
        assert inputs[0]["value"] == "a cat on a roof"  # the member's own prompt, not the style's text
        await fake.submit_modal(
            modal["data"]["custom_id"], {inputs[0]["custom_id"]: "a cat at night", inputs[1]["custom_id"]: ""}
        )
        edited = await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED, job_id=3)
        assert edited.style == "Noir"
        rows = await usage_rows(world, bot.store)
    prompts = [s.json["prompt"] for s in world.submits()]
    assert prompts == [
        "a cat on a roof, black and white film noir",
        "a cat on a roof, black and white film noir",
        "a cat at night, black and white film noir",
    ]
    assert [(r["style"], r["prompt"]) for r in rows] == [("Noir", p) for p in prompts]

    async with world.bot():
        assert "removed" in await admin(world, "style remove", {"name": "NOIR"})
        assert "no style called" in await admin(world, "style remove", {"name": "Noir"})


async def test_unknown_style_rules_and_length_apply_to_the_whole(world: World) -> None:
    fake = world.fake
    async with world.bot() as bot:
        await admin(world, "style add", {"name": "Gore", "text": "with lots of forbidden blood"})
        await admin(world, "style add", {"name": "Long", "text": "y" * 1000})
        await bot.store.settings.add_rule(
            fake.guild_id, "word", "forbidden", fake.moderator_id, bot.clock.time()
        )

        async def refused(options: dict[str, Any]) -> str:
            interaction = await fake.invoke_slash("imagine", options)
            answer = (await fake.wait_for_callback(interaction)).json
            assert answer["type"] == 4 and answer["data"]["flags"] & EPHEMERAL
            return str(answer["data"]["content"])

        assert "no style called `Pastel`" in await refused({"prompt": "a cat", "style": "Pastel"})
        assert await refused({"prompt": "a cat", "style": "gore"}) == BLOCKED_TEXT.english()
        long_prompt = "x" * (MAX_PROMPT_CHARS - 500)
        text = await refused({"prompt": long_prompt, "style": "Long"})
        assert "with the style `Long`" in text and f"{MAX_PROMPT_CHARS:,}" in text

        async def three_logged() -> list[dict[str, Any]] | None:  # logged just after the answer
            found = await usage_rows(world, bot.store)
            return found if len(found) >= 3 else None

        rows = await wait_until(three_logged, "the three refusals to be logged", timeout=5)
    assert world.submits() == []
    assert [r["reason"] for r in rows] == ["bad_input", "blocked_prompt", "bad_input"]
    assert rows[1]["style"] == "Gore" and rows[1]["prompt"] == "a cat, with lots of forbidden blood"
