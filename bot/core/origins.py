"""Origins as operators write them (`host`, `host:port`, `[v6]:port`), parsed in one place for the
settings (RESULT_HOSTS) and the fetch policy that allows them."""

from __future__ import annotations


def origin(host: str, port: int | None) -> tuple[str, int | None]:
    """The (host, port) pair in the form origins are compared in: lower case, no brackets, no final dot."""
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
    return origin(host, port)
