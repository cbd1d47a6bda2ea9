"""Fetching URLs that someone else chose (result links of the image API), from public addresses only.

The image API's answer names the URLs the bot downloads. Without a check, an answer (or a result host
that redirects) could make the bot fetch from its own network: loopback, the cloud metadata service on
169.254.169.254, private ranges. So every connection of the process's one aiohttp session goes through
`PublicResolver`, which drops every non-public address *from the same DNS answer the connector then
connects to* (no window for a DNS-rebinding answer to change between check and connect), and
`fetch_public` checks IP literals (which aiohttp never resolves) and follows redirects by hand,
checking each hop the same way.

Allowed without the address check: the image API's own origin (as configured, which may be a sandbox
on 127.0.0.1) and the operator's `RESULT_HOSTS`.

Names are looked up by `PoolResolver`, on the DNS thread pool of bot/core/executors.py rather than
asyncio's default executor (which aiohttp's default resolver uses), so a flood of other blocking work
cannot hold up a connection. `pooled_connector` gives other sessions (discord.py's) the same.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from bot.core.executors import DNS
from bot.core.texts import Text, msg

log = logging.getLogger(__name__)

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 3
TOO_LARGE = msg("it is larger than the bot accepts")
_NOT_PUBLIC = msg("the link is not on a public address, so the bot did not fetch it")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class FetchError(Exception):
    """A fetch that did not give a body. `text` is safe to show a member (in their language; `str()` is
    the English); `detail` is for the log only (it may name an internal host, a status code or a content
    type). `permanent` errors are not retried."""

    def __init__(self, public: Text, detail: str, *, permanent: bool = False, blocked: bool = False) -> None:
        super().__init__(public)
        self.text = public
        self.detail = detail
        self.permanent = permanent or blocked
        self.blocked = blocked


class BlockedAddressError(OSError):
    """Every address a host name resolved to is non-public (raised inside the connector)."""


def is_public_address(address: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True only for a globally routable unicast address. IPv6 forms that carry an IPv4 address
    (IPv4-mapped, 6to4, Teredo, NAT64) are judged by the address they carry."""
    try:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded: ipaddress.IPv4Address | None = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip.teredo is not None:
            embedded = ip.teredo[1]
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public_address(embedded)
    # `is_global` alone lets multicast through, so every category is named.
    return ip.is_global and not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def _origin(host: str, port: int | None) -> tuple[str, int | None]:
    return host.strip("[]").lower().rstrip("."), port


def parse_host_entry(entry: str) -> tuple[str, int | None]:
    """`host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address. Raises ValueError."""
    text = entry.strip()
    if not text or "/" in text or "@" in text or any(ch.isspace() for ch in text):
        raise ValueError(entry)
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else None
        if rest and port_text is None:
            raise ValueError(entry)
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, None  # a name, an IPv4 address, or a bare IPv6 address
    port: int | None = None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(entry)
        port = int(port_text)
    if not host:
        raise ValueError(entry)
    return _origin(host, port)


@dataclass(frozen=True)
class FetchPolicy:
    """Which origins skip the public-address check: (host, port), port None meaning any port."""

    allowed: frozenset[tuple[str, int | None]] = frozenset()

    @classmethod
    def build(cls, api_base_url: str | None, result_hosts: Iterable[str] = ()) -> FetchPolicy:
        allowed = {parse_host_entry(entry) for entry in result_hosts}
        if api_base_url:
            url = URL(api_base_url)
            if url.host:
                allowed.add(_origin(url.host, url.port))
        return cls(frozenset(allowed))

    def allows(self, host: str, port: int | None) -> bool:
        name, port = _origin(host, port)
        return (name, port) in self.allowed or (name, None) in self.allowed


class PoolResolver(AbstractResolver):
    """aiohttp's threaded resolution (getaddrinfo), on the process's DNS pool."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        infos = await DNS.run(
            socket.getaddrinfo, host, port, family, socket.SOCK_STREAM, 0, socket.AI_ADDRCONFIG
        )
        results: list[ResolveResult] = []
        for info_family, _type, proto, _name, address in infos:
            if info_family == socket.AF_INET6:
                if len(address) < 4:
                    continue  # an IPv6 answer on a build without IPv6 support
                # A link-local address is only usable with its interface (its scope id).
                text = f"{address[0]}%{address[3]}" if address[3] else str(address[0])
            elif info_family == socket.AF_INET:
                text = str(address[0])
            else:
                continue
            results.append(
                ResolveResult(
                    hostname=host,
                    host=text,
                    port=int(address[1]),
                    family=info_family,
                    proto=proto,
                    flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
                )
            )
        if not results:
            raise OSError(f"no usable address for {host}")
        return results

    async def close(self) -> None:
        pass


def pooled_connector(**kwargs: object) -> aiohttp.TCPConnector:
    """A plain connector (no address filtering) whose look-ups run on the DNS pool: for sessions that
    only reach fixed services, like discord.py's. Call it inside the running event loop."""
    return aiohttp.TCPConnector(resolver=PoolResolver(), **kwargs)  # type: ignore[arg-type]


class PublicResolver(AbstractResolver):
    """Resolves names, and keeps only the public addresses unless the origin is allowed.

    It sits on the connector of the process's one session, so the addresses it returns are the very
    ones the connector connects to."""

    def __init__(self, policy: FetchPolicy, inner: AbstractResolver | None = None) -> None:
        self.policy = policy
        self._inner = inner or PoolResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        if self.policy.allows(host, port):
            return answers
        public = [answer for answer in answers if is_public_address(answer["host"])]
        if not public:
            raise BlockedAddressError(f"{host} resolves only to non-public addresses")
        if len(public) < len(answers):
            log.warning("%s resolved to non-public addresses too; using only its public ones", host)
        return public

    async def close(self) -> None:
        await self._inner.close()


class PublicConnector(aiohttp.TCPConnector):
    """A TCP connector whose name resolution is filtered by a `FetchPolicy`."""

    def __init__(
        self, policy: FetchPolicy, resolver: AbstractResolver | None = None, **kwargs: object
    ) -> None:
        self.policy = policy
        super().__init__(resolver=PublicResolver(policy, resolver), **kwargs)  # type: ignore[arg-type]


def open_session(
    policy: FetchPolicy,
    *,
    total_timeout: float = 60.0,
    trace_configs: list[aiohttp.TraceConfig] | None = None,
) -> aiohttp.ClientSession:
    """The process's one session: the image API's requests and every download share its connector."""
    return aiohttp.ClientSession(
        connector=PublicConnector(policy),
        timeout=aiohttp.ClientTimeout(total=total_timeout),
        trace_configs=trace_configs,
    )


def _policy_of(session: aiohttp.ClientSession) -> FetchPolicy:
    connector = session.connector
    if not isinstance(connector, PublicConnector):
        # Without the filtering resolver a host name could lead anywhere: refuse rather than guess.
        raise TypeError("fetch_public needs a session made by bot.safe_fetch.open_session")
    return connector.policy


def _for_log(url: URL) -> str:
    # Result links may carry signatures in their query: the log gets the place, not the key.
    return str(url.with_query(None).with_fragment(None))


def check_url(url: URL, policy: FetchPolicy) -> None:
    """Refuse what the resolver cannot see: non-http schemes and IP literals (aiohttp connects to a
    literal without asking the resolver). Names are checked by `PublicResolver` at connect time."""
    if url.scheme not in ("http", "https") or not url.host:
        raise FetchError(
            msg("the link is not a web address"), f"scheme or host missing in {_for_log(url)}", blocked=True
        )
    if url.user or url.password:
        raise FetchError(msg("the link is not usable"), f"credentials in {_for_log(url)}", blocked=True)
    host = url.host
    if policy.allows(host, url.port):
        return
    # What aiohttp treats as an address literal (any ':' or only digits and dots) must be a canonical
    # public address; anything else numeric would reach the socket layer unchecked.
    if ":" in host or host.replace(".", "").isdigit():
        try:
            ip = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            raise FetchError(
                _NOT_PUBLIC,
                f"odd numeric host in {_for_log(url)}",
                blocked=True,
            ) from None
        if not is_public_address(ip):
            raise FetchError(
                _NOT_PUBLIC,
                f"non-public address in {_for_log(url)}",
                blocked=True,
            )


@dataclass(frozen=True)
class Fetched:
    data: bytes
    content_type: str


async def fetch_public(
    session: aiohttp.ClientSession,
    url: str,
    *,
    max_bytes: int,
    timeout: float,
    max_redirects: int = MAX_REDIRECTS,
    too_large: Text = TOO_LARGE,
) -> Fetched:
    """GET `url` from a public (or allowed) address, following at most `max_redirects` redirects, each
    checked; the body is read up to `max_bytes`. Raises `FetchError`."""
    policy = _policy_of(session)
    try:
        current = URL(url)
    except ValueError:
        raise FetchError(msg("the link is not usable"), "a link that is not a URL", blocked=True) from None
    try:
        async with asyncio.timeout(timeout):
            for _hop in range(max_redirects + 1):
                check_url(current, policy)
                async with session.get(
                    current, allow_redirects=False, timeout=aiohttp.ClientTimeout(total=timeout)
                ) as response:
                    if response.status in REDIRECT_STATUSES:
                        location = response.headers.get("Location")
                        if not location:
                            raise FetchError(
                                msg("the image host sent nothing"),
                                f"redirect without Location from {_for_log(current)}",
                            )
                        current = current.join(URL(location))
                        continue
                    if response.status != 200:
                        raise FetchError(
                            msg("the image host did not send it"),
                            f"HTTP {response.status} from {_for_log(current)}",
                            permanent=400 <= response.status < 500 and response.status not in (408, 429),
                        )
                    declared = response.content_length
                    if declared is not None and declared > max_bytes:
                        raise FetchError(
                            too_large, f"{declared} bytes declared by {_for_log(current)}", permanent=True
                        )
                    chunks: list[bytes] = []
                    total = 0
                    async for chunk in response.content.iter_chunked(64 * 1024):
                        total += len(chunk)
                        if total > max_bytes:
                            raise FetchError(
                                too_large, f"over {max_bytes} bytes from {_for_log(current)}", permanent=True
                            )
                        chunks.append(chunk)
                    return Fetched(b"".join(chunks), response.content_type.lower())
            raise FetchError(
                msg("the image host redirected too often"),
                f"more than {max_redirects} redirects, last to {_for_log(current)}",
                permanent=True,
            )
    except TimeoutError:
        raise FetchError(
            msg("the image host did not answer in time"), f"timeout fetching {_for_log(current)}"
        ) from None
    except aiohttp.ClientConnectorError as exc:
        if isinstance(getattr(exc, "os_error", None), BlockedAddressError) or isinstance(
            exc.__cause__, BlockedAddressError
        ):
            raise FetchError(
                _NOT_PUBLIC,
                f"{_for_log(current)} resolves only to non-public addresses",
                blocked=True,
            ) from None
        raise FetchError(
            msg("the image host could not be reached"), f"{type(exc).__name__} for {_for_log(current)}"
        ) from None
    except (aiohttp.InvalidURL, ValueError):
        # A link, or a redirect's Location, that is not a usable URL.
        raise FetchError(
            msg("the link is not usable"), f"invalid URL after {_for_log(current)}", blocked=True
        ) from None
    except aiohttp.ClientError as exc:
        raise FetchError(
            msg("the download was cut off"), f"{type(exc).__name__} for {_for_log(current)}"
        ) from None
