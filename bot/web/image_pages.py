"""One image: its page, its thumbnail and full picture, and the two things done to it from the web,
Delete (its maker) and Remove from gallery (the server's moderators).

Who may see an image is decided here, on the server side, for every page and every picture: its maker
always; anyone else only while it is in a server gallery that is on, and only as a member of that server
(membership.py). Anything else is "Not found", whatever id the address carries."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import Session

from bot.adapters.store import GalleryImage
from bot.web import membership
from bot.web.discord_rest import DiscordUnavailable
from bot.web.guard import CSRF_FIELD, csrf_ok
from bot.web.pages import CONTEXT, PageError, WebContext, has_poster, page_context, poster_of, signed_in
from bot.web.pictures import Picture

log = logging.getLogger(__name__)

DISCORD_MESSAGE_LINK = "https://discord.com/channels/{place}/{channel}/{message}"
# Cached by this browser only, and only for the same signed-in member (the cookie changes at every
# sign-in and sign-out): the next member at a shared computer gets it from the server.
PRIVATE_CACHE = {"Cache-Control": "private, max-age=3600", "Vary": "Cookie"}


@dataclass(frozen=True)
class Seen:
    """An image as the signed-in member may see it."""

    session: Session
    user_id: int
    image: GalleryImage
    mine: bool
    access: membership.ServerAccess | None  # set when it is seen through its server's gallery

    @property
    def removable(self) -> bool:
        return self.access is not None and self.access.moderator


async def in_server_gallery(
    ctx: WebContext, session: Session, user_id: int, image: GalleryImage
) -> membership.ServerAccess | None:
    """The member's access to the image through its server's gallery, or None."""
    if image.guild_id is None or image.private:
        return None
    switches = await ctx.store.gallery.switches(image.guild_id)
    if not switches.enabled:
        return None
    access = await membership.server_access(session, user_id, image.guild_id, ctx.discord)
    if access is None:
        return None
    shown = await ctx.store.gallery.server_image(
        image.guild_id, image.id, hide_banned=switches.hide_banned, now=ctx.now()
    )
    return access if shown is not None else None


async def seen_image(request: web.Request, *, with_access: bool = True) -> Seen:
    """The image of the address, if the member may see it. `with_access=False`: its maker's pictures
    need no look at the server (a page of thirty thumbnails asks nothing more)."""
    ctx = request.app[CONTEXT]
    session, uid = await signed_in(request)
    raw = request.match_info["image_id"]
    image = await ctx.store.gallery.any_image(int(raw)) if raw.isdigit() and len(raw) <= 19 else None
    if image is None:
        raise PageError(404, "not_found")
    skip = not with_access and image.user_id == uid
    access = None if skip else await in_server_gallery(ctx, session, uid, image)
    if image.user_id != uid and access is None:
        raise PageError(404, "not_found")
    return Seen(session, uid, image, image.user_id == uid, access)


def copy_command(image: GalleryImage) -> str:
    """The /imagine that makes this image again (its references are not part of it)."""
    parts = [f"/imagine prompt:{image.prompt}"]
    if image.aspect_ratio:
        parts.append(f"aspect_ratio:{image.aspect_ratio}")
    if image.style:
        parts.append(f"style:{image.style}")
    return " ".join(parts)


def message_link(image: GalleryImage) -> str | None:
    if image.message_id is None or image.message_channel_id is None or image.deliver_to == "ephemeral":
        return None
    place = image.guild_id or image.place_guild_id or "@me"
    return DISCORD_MESSAGE_LINK.format(
        place=place, channel=image.message_channel_id, message=image.message_id
    )


async def image_page(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    seen = await seen_image(request)
    image = seen.image
    context = await page_context(request, seen.session)
    names: dict[str, str] = seen.session.get("guilds") or {}
    if image.guild_id is not None:
        where = seen.access.name if seen.access else names.get(str(image.guild_id), str(image.guild_id))
    else:
        where = context["tx"]["personal_use"]
    values = {
        "image": image,
        "when": datetime.fromtimestamp(image.created_at, UTC),
        "where": where,
        "maker": context["member"] if seen.mine else await membership.maker_name(ctx.discord, image.user_id),
        "command": copy_command(image),
        "link": message_link(image),
        "pictures": list(range(max(len(image.result_urls), 1))),
        "poster": has_poster(image, ctx.thumbnails),
        "mine": seen.mine,
        "removable": seen.removable and not image.removed,
        "back": f"/servers/{image.guild_id}" if not seen.mine and image.guild_id else "/me",
    }
    return aiohttp_jinja2.render_template("image.html", request, context | values)


def _index(request: web.Request) -> int:
    raw = request.match_info["index"]
    if not raw.isdigit() or int(raw) > 9:  # Discord posts at most 10 files in a message
        raise PageError(404, "not_found")
    return int(raw)


def _send(picture: Picture | None) -> web.Response:
    if picture is None:
        raise PageError(404, "not_found")
    return web.Response(body=picture.body, content_type=picture.content_type, headers=PRIVATE_CACHE)


async def image_bytes(request: web.Request) -> web.Response:
    """The full image (or video), fetched on the server side (pictures.py says why)."""
    ctx = request.app[CONTEXT]
    seen = await seen_image(request, with_access=False)
    return _send(await ctx.pictures.full(seen.image, _index(request)))


async def thumbnail(request: web.Request) -> web.Response:
    """The image's thumbnail (made now when it has none yet); a video's is its source image's."""
    ctx = request.app[CONTEXT]
    seen = await seen_image(request, with_access=False)
    source = poster_of(seen.image)
    if source is not None:
        kept = ctx.thumbnails.read(*source)
        return _send(Picture(kept, "image/webp") if kept is not None else None)
    return _send(await ctx.pictures.thumbnail(seen.image, _index(request)))


async def _checked_form(request: web.Request, seen: Seen) -> None:
    form = await request.post()
    if not csrf_ok(seen.session, form.get(CSRF_FIELD)):
        raise PageError(403, "expired")


async def delete_image(request: web.Request) -> web.Response:
    """Delete, as the Delete button under the image in Discord does: the message goes, and the job is
    recorded as deleted (store.jobs.mark_result_deleted, the button's own record), so it leaves the
    gallery and /history. Its thumbnail and kept links go too."""
    ctx = request.app[CONTEXT]
    seen = await seen_image(request)
    await _checked_form(request, seen)
    image = seen.image
    if not seen.mine:
        raise PageError(404, "not_found")
    if (
        image.message_id is not None
        and image.message_channel_id is not None
        and image.deliver_to != "ephemeral"
    ):
        if ctx.discord is None:
            raise PageError(503, "delete_failed")
        try:
            gone = await ctx.discord.delete_message(image.message_channel_id, image.message_id)
        except DiscordUnavailable as error:
            log.warning("gallery: could not delete image %s (%s)", image.id, error)
            gone = False
        if not gone:
            raise PageError(502, "delete_failed")
    await ctx.store.jobs.mark_result_deleted(image.id, ctx.now())
    ctx.thumbnails.forget(image.id)
    log.info("gallery: member %s deleted image %s", seen.user_id, image.id)
    raise web.HTTPSeeOther("/me")


async def remove_from_gallery(request: web.Request) -> web.Response:
    """A moderator takes an image out of the server's gallery; it stays in Discord and in its maker's
    own images. Recorded in the admin log with the moderator's id."""
    ctx = request.app[CONTEXT]
    seen = await seen_image(request)
    await _checked_form(request, seen)
    if not seen.removable or seen.image.guild_id is None:
        raise PageError(404, "not_found")
    await ctx.store.gallery.remove(seen.image.guild_id, seen.image.id, seen.user_id, ctx.now())
    log.info("gallery: moderator %s removed image %s", seen.user_id, seen.image.id)
    raise web.HTTPSeeOther(f"/servers/{seen.image.guild_id}")
