"""The gallery's store queries on SQLite and PostgreSQL: a member's images only, newest first in keyset
pages, filters, and search by prompt words in English and Chinese (two-character words included)."""

from __future__ import annotations

from pathlib import Path

from bot.adapters.store import GalleryFilter, Store
from bot.adapters.store.migrations.versions import v0013_web_gallery as gallery_revision
from bot.core.prompt_words import index_terms, query_terms
from tests.gallery_seed import post_image
from tests.legacy_fixtures import sqlite_at_revision

ME, SOMEONE = 111, 222
SERVER, OTHER_SERVER = 1_000_000_000_000_001, 1_000_000_000_000_002
DAY = 86_400.0
START = 1_760_000_000.0  # 2025-10-09 UTC


def words(query: str) -> GalleryFilter:
    return GalleryFilter(terms=tuple(query_terms(query)))


def test_cjk_runs_are_indexed_as_characters_and_pairs() -> None:
    assert index_terms("水彩猫, Watercolor!") == {"水", "彩", "猫", "水彩", "彩猫", "watercolor"}
    assert query_terms("水彩画 Cat") == ["水彩", "彩画", "cat"]
    assert query_terms("猫") == ["猫"]
    assert query_terms("  ,,, ") == []


async def seed(store: Store) -> dict[str, int]:
    ids = {}
    prompts = [
        ("cat", "a watercolor cat on a windowsill", SERVER, "1:1", None),
        ("fox", "red fox in the snow, oil painting", SERVER, "16:9", "Oil"),
        ("shanshui", "中国山水画，远山和小船", OTHER_SERVER, "9:16", None),
        ("shuicai", "水彩画的小猫在窗台上", SERVER, "1:1", "Oil"),
        ("personal", "a quiet harbour at dawn", None, "3:2", None),
        ("mixed", "赛博朋克 city at night", OTHER_SERVER, "16:9", None),
    ]
    for n, (name, prompt, guild, ratio, style) in enumerate(prompts):
        ids[name] = await post_image(
            store,
            user_id=ME,
            prompt=prompt,
            guild_id=guild,
            created_at=START + n * DAY,
            aspect_ratio=ratio,
            style=style,
        )
    ids["theirs"] = await post_image(store, user_id=SOMEONE, prompt="a watercolor cat 水彩", guild_id=SERVER)
    return ids


async def test_my_images_newest_first_in_keyset_pages(any_store: Store) -> None:
    ids = await seed(any_store)
    first = await any_store.gallery.page(ME, GalleryFilter(), limit=4)
    rest = await any_store.gallery.page(ME, GalleryFilter(), before_id=first[-1].id, limit=4)
    listed = [image.id for image in first + rest]
    assert listed == sorted((v for k, v in ids.items() if k != "theirs"), reverse=True)
    assert all(image.user_id == ME for image in first + rest)


async def test_search_finds_english_and_chinese_words(any_store: Store) -> None:
    ids = await seed(any_store)

    async def found(query: str) -> set[int]:
        return {image.id for image in await any_store.gallery.page(ME, words(query))}

    assert await found("watercolor") == {ids["cat"]}
    assert await found("WATERCOLOR Cat") == {ids["cat"]}
    assert await found("水彩") == {ids["shuicai"]}  # a two-character word
    assert await found("山水") == {ids["shanshui"]}
    assert await found("小猫") == {ids["shuicai"]}
    assert await found("猫") == {ids["shuicai"]}  # one character
    assert await found("山水画") == {ids["shanshui"]}  # longer words: all their pairs
    assert await found("小") == {ids["shanshui"], ids["shuicai"]}
    assert await found("朋克 city") == {ids["mixed"]}
    assert await found("水彩 fox") == set()  # every word must match
    assert await found("dog") == set()
    # Someone else's "watercolor cat 水彩" is never found by me.
    assert ids["theirs"] not in await found("水彩") | await found("watercolor")


async def test_filters_narrow_the_page(any_store: Store) -> None:
    ids = await seed(any_store)

    async def listed(flt: GalleryFilter) -> set[int]:
        return {image.id for image in await any_store.gallery.page(ME, flt)}

    assert await listed(GalleryFilter(server=OTHER_SERVER)) == {ids["shanshui"], ids["mixed"]}
    assert await listed(GalleryFilter(personal=True)) == {ids["personal"]}
    assert await listed(GalleryFilter(aspect_ratio="16:9")) == {ids["fox"], ids["mixed"]}
    assert await listed(GalleryFilter(style="oil")) == {ids["fox"], ids["shuicai"]}
    assert await listed(GalleryFilter(since=START + DAY, until=START + 3 * DAY)) == {
        ids["fox"],
        ids["shanshui"],
    }
    both = GalleryFilter(server=SERVER, terms=tuple(query_terms("水彩")), style="Oil")
    assert await listed(both) == {ids["shuicai"]}
    facets = await any_store.gallery.facets(ME)
    assert facets.servers == [SERVER, OTHER_SERVER] and facets.personal and facets.styles == ["Oil"]


async def test_an_image_opens_for_its_maker_only(any_store: Store) -> None:
    ids = await seed(any_store)
    assert (await any_store.gallery.image(ME, ids["cat"])) is not None
    assert await any_store.gallery.image(ME, ids["theirs"]) is None
    assert await any_store.gallery.image(SOMEONE, ids["cat"]) is None
    private = await post_image(any_store, user_id=ME, prompt="secret", guild_id=SERVER, deliver_to="dm")
    assert (await any_store.gallery.image(ME, private)).private  # type: ignore[union-attr]
    assert await any_store.gallery.image(SOMEONE, private) is None
    # A deleted message takes its image out of the gallery.
    await any_store.jobs.mark_result_deleted(ids["fox"], START + 99 * DAY)
    assert await any_store.gallery.image(ME, ids["fox"]) is None
    assert ids["fox"] not in {image.id for image in await any_store.gallery.page(ME, GalleryFilter())}


async def test_images_posted_before_the_gallery_are_indexed_by_the_backfill(tmp_path: Path) -> None:
    """A database made by the version before the gallery: its posted images become searchable."""
    import sqlite3

    path = tmp_path / "old.db"
    sqlite_at_revision(path, gallery_revision.down_revision)
    # An image posted before the gallery existed, written as that version wrote it.
    with sqlite3.connect(path) as db:
        old = db.execute(
            "INSERT INTO jobs (source, status, prompt, aspect_ratio, guild_id, channel_id, user_id,"
            " created_at, finished_at, delivered_at, result_urls, delivery, result_message_id,"
            " result_channel_id) VALUES ('discord', 'delivered', ?, '1:1', ?, 9001, ?, ?, ?, ?,"
            " '[\"http://127.0.0.1:9/none.png\"]', 'posted', 7777, 9001)",
            ["水彩的山 and a lighthouse", SERVER, ME, START, START + 10, START + 11],
        ).lastrowid
    store = await Store.open(path)  # migrates to the gallery's version again
    try:
        assert await store.gallery.page(ME, words("lighthouse")) == []
        assert await store.gallery.backfill_prompt_words(batch=1) is False  # one image done, maybe more
        assert await store.gallery.backfill_prompt_words(batch=1) is True
        assert [image.id for image in await store.gallery.page(ME, words("水彩"))] == [old]
    finally:
        await store.close()


async def test_a_server_gallery_shows_public_images_only(any_store: Store) -> None:
    """Both backends: a server's public posts, newest first in keyset pages; never a private one, a
    removed one, another server's, or (unless the server says otherwise) a banned member's."""
    ids = await seed(any_store)
    banned, now = 333, START + 100 * DAY
    private = await post_image(
        any_store, user_id=SOMEONE, prompt="a private cat", guild_id=SERVER, deliver_to="dm"
    )
    by_banned = await post_image(any_store, user_id=banned, prompt="a banned cat 水彩", guild_id=SERVER)
    await any_store.settings.ban(SERVER, banned, reason=None, expires_at=None, actor_id=ME, now=now)
    assert (await any_store.gallery.switches(SERVER)).enabled is False
    switches = await any_store.gallery.set_switches(SERVER, ME, now, enabled=True)
    assert switches.enabled and switches.hide_banned  # hidden unless the server says not
    assert await any_store.gallery.open_galleries([SERVER, OTHER_SERVER]) == [SERVER]

    async def shown(flt: GalleryFilter | None = None, hide: bool = True, **page: int) -> list[int]:
        images = await any_store.gallery.server_page(
            SERVER, flt or GalleryFilter(), hide_banned=hide, now=now, **page
        )
        return [image.id for image in images]

    public = sorted([ids["cat"], ids["fox"], ids["shuicai"], ids["theirs"]], reverse=True)
    assert await shown() == public
    assert await shown(limit=2) + await shown(before_id=public[1]) == public
    assert private not in await shown() and by_banned in await shown(hide=False)
    assert await shown(words("水彩")) == sorted([ids["shuicai"], ids["theirs"]], reverse=True)
    assert await shown(words("水彩"), hide=False) == sorted(
        [by_banned, ids["shuicai"], ids["theirs"]], reverse=True
    )
    assert await shown(words("watercolor cat")) == sorted([ids["cat"], ids["theirs"]], reverse=True)
    # A moderator removes one: gone from the server's gallery, still its maker's.
    assert await any_store.gallery.remove(SERVER, ids["fox"], SOMEONE, now)
    assert not await any_store.gallery.remove(OTHER_SERVER, ids["cat"], SOMEONE, now)  # not that server's
    assert ids["fox"] not in await shown()
    assert await any_store.gallery.server_image(SERVER, ids["fox"], hide_banned=True, now=now) is None
    mine = await any_store.gallery.image(ME, ids["fox"])
    assert mine is not None and mine.removed
    # A ban that ran out no longer hides anything.
    await any_store.settings.unban(SERVER, banned, ME, now)
    await any_store.settings.ban(SERVER, banned, reason=None, expires_at=now - 1, actor_id=ME, now=now - 10)
    assert by_banned in await shown()
