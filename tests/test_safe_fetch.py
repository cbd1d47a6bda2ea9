"""The bot fetches only from public addresses (or the API's origin and RESULT_HOSTS), through real
servers on loopback: an "internal" host must never see a request, whatever the link or redirect."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from bot.adapters.safe_fetch import (
    BlockedAddressError,
    FetchError,
    FetchPolicy,
    PublicResolver,
    fetch_public,
    is_public_address,
    open_session,
    parse_host_entry,
)
from tests.helpers import ImageHost

NOT_PUBLIC = [
    "127.0.0.1",
    "127.0.0.2",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",  # the cloud metadata service
    "100.64.0.1",  # carrier-grade NAT
    "0.0.0.0",
    "224.0.0.1",
    "255.255.255.255",
    "240.0.0.1",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "ff02::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:169.254.169.254",
    "2002:7f00:1::1",  # 6to4 around 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 around 169.254.169.254
    "not an address",
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_public_address(address)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert is_public_address(address)


def test_allow_entries_and_the_api_origin() -> None:
    assert parse_host_entry("Images.Example.com") == ("images.example.com", None)
    assert parse_host_entry("cdn.example.com:8443") == ("cdn.example.com", 8443)
    assert parse_host_entry("[::1]:9000") == ("::1", 9000)
    assert parse_host_entry("::1") == ("::1", None)
    for bad in ("", "http://x", "host:port", "a b", "user@host", "[::1]x"):
        with pytest.raises(ValueError):
            parse_host_entry(bad)
    policy = FetchPolicy.build("http://127.0.0.1:8090", ["cdn.example.com"])
    assert policy.allows("127.0.0.1", 8090)
    assert not policy.allows("127.0.0.1", 8091)  # another port of the API's host is not the API
    assert policy.allows("CDN.example.com.", 443) and policy.allows("cdn.example.com", 80)
    default_port = FetchPolicy.build("https://api.mountsea.ai")
    assert default_port.allows("api.mountsea.ai", 443) and not default_port.allows("api.mountsea.ai", 80)


class ScriptedResolver(AbstractResolver):
    """Answers like a DNS server that mixes addresses (what a rebinding attack serves)."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in self.answers[host]
        ]

    async def close(self) -> None:
        return None


async def test_the_resolver_keeps_only_public_addresses() -> None:
    inner = ScriptedResolver(
        {
            "mixed.example": ["10.0.0.5", "93.184.215.14", "::ffff:127.0.0.1"],
            "inside.example": ["169.254.169.254", "fd00::1"],
            "api.internal": ["10.0.0.9"],
        }
    )
    resolver = PublicResolver(FetchPolicy.build("http://api.internal:8080"), inner)
    kept = await resolver.resolve("mixed.example", 443)
    assert [answer["host"] for answer in kept] == ["93.184.215.14"]
    with pytest.raises(BlockedAddressError):
        await resolver.resolve("inside.example", 443)
    # The API's own origin is the operator's choice, wherever it is.
    assert [a["host"] for a in await resolver.resolve("api.internal", 8080)] == ["10.0.0.9"]
    with pytest.raises(BlockedAddressError):
        await resolver.resolve("api.internal", 9999)


@pytest.fixture
async def hosts() -> AsyncIterator[tuple[ImageHost, ImageHost, ImageHost, ImageHost]]:
    """A "public" host (allowed below), and internal ones on another port, on 127.0.0.2 and on [::1]."""
    async with (
        ImageHost() as public,
        ImageHost() as internal,
        ImageHost("127.0.0.2") as internal2,
        ImageHost("::1") as internal6,
    ):
        yield public, internal, internal2, internal6


async def test_internal_links_and_redirects_are_never_fetched(
    hosts: tuple[ImageHost, ImageHost, ImageHost, ImageHost],
) -> None:
    public, internal, internal2, internal6 = hosts
    inside = [
        internal.url("/secret.png"),
        internal2.url("/secret.png"),
        internal6.url("/secret.png"),
        f"http://localhost:{internal.port}/secret.png",  # a name that resolves to loopback
        "http://169.254.169.254/latest/meta-data/",
        f"http://[::ffff:127.0.0.1]:{internal.port}/secret.png",
        f"http://2130706433:{internal.port}/secret.png",  # 127.0.0.1 as one number
        f"http://0x7f.1:{internal.port}/secret.png",
    ]
    links = [
        *inside,
        *(public.url(f"/redirect?to={target}") for target in inside),
        public.url(f"/redirect?to={public.url('/redirect?to=' + internal.url('/secret.png'))}"),
        public.url("/redirect?to=file:///etc/passwd"),
        "http://user:pw@" + public.origin + "/img.png",
    ]
    async with open_session(FetchPolicy.build("http://127.0.0.1:1", [public.origin])) as session:
        for link in links:
            with pytest.raises(FetchError) as refused:
                await fetch_public(session, link, max_bytes=1_000_000, timeout=5)
            assert refused.value.blocked, (link, refused.value.detail)
            # What a member may read says nothing of the host, its address or its answer.
            text = str(refused.value)
            assert "127." not in text and "::" not in text and "localhost" not in text and "HTTP" not in text
        fetched = await fetch_public(session, public.url("/img.png"), max_bytes=1_000_000, timeout=5)
        assert fetched.data.startswith(b"\x89PNG")
    assert internal.hits == internal2.hits == internal6.hits == []
    assert public.hits  # the public host was asked, and redirected; nothing followed it inside


async def test_redirects_are_followed_a_few_times_and_loops_end(
    hosts: tuple[ImageHost, ImageHost, ImageHost, ImageHost],
) -> None:
    public = hosts[0]
    async with open_session(FetchPolicy.build(None, [public.origin])) as session:
        hop = public.url("/img.png")
        for _ in range(3):
            hop = public.url(f"/redirect?to={hop}")
        assert (await fetch_public(session, hop, max_bytes=100_000, timeout=5)).data.startswith(b"\x89PNG")
        public.hits.clear()
        with pytest.raises(FetchError, match="redirected too often") as looped:
            await fetch_public(session, public.url("/loop"), max_bytes=100_000, timeout=5)
        assert looped.value.permanent
    assert len(public.hits) == 4  # the first request and three redirects, then it stopped


async def test_a_session_without_the_public_connector_is_refused() -> None:
    import aiohttp

    async with aiohttp.ClientSession() as plain:
        with pytest.raises(TypeError):
            await fetch_public(plain, "http://127.0.0.1:1/x.png", max_bytes=10, timeout=1)
