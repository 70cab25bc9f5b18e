"""Who is calling: the client address a rate limit counts against.

The socket peer, unless that peer is one of our trusted proxies: then the address comes from
the one header those proxies write (FORWARDED_HEADER: X-Forwarded-For, or the `for=` of
Forwarded), walked from the nearest hop and skipping every hop that is itself a trusted proxy.
The other header is never read: a client could send it through the proxy untouched. An
untrusted peer's forwarding headers are ignored, so a client cannot pick a fresh address per
request.

With X-Forwarded-For, `python -m` runs uvicorn with proxy headers from the same trusted list:
uvicorn rewrites the peer with this same walk before we see the request. The walk gives the
same answer on a rewritten request (the rewritten peer is untrusted, or every hop was trusted
and it is the farthest one), so the two never disagree.
"""

from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_address

from starlette.types import Scope

Network = IPv4Network | IPv6Network


class TrustedProxies:
    def __init__(self, networks: list[Network], header: str = "x-forwarded-for") -> None:
        self.networks = networks
        self.header = header.encode()
        # Peers repeat: parse each address once (uvicorn caches the same way).
        self.contains = lru_cache(maxsize=4096)(self.compute_contains)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def compute_contains(self, host: str) -> bool:
        try:
            address = ip_address(host)
        except ValueError:
            return False  # "unknown", an obfuscated name, garbage: never a trusted proxy
        return any(address in network for network in self.networks)


def split_host_port(value: str) -> str:
    """The host of `host`, `host:port`, `[v6]` or `[v6]:port` (as uvicorn reads them)."""
    value = value.strip()
    if value.startswith("["):
        end = value.find("]")
        return value[1:end] if end != -1 else value
    if value.count(":") == 1:
        return value.rsplit(":", 1)[0]
    return value


def forwarded_hops(headers: list[tuple[bytes, bytes]], header: bytes) -> list[str]:
    """The forwarding chain in `header` (x-forwarded-for or forwarded), farthest first."""
    hops: list[str] = []
    for name, value in headers:
        if name != header:
            continue
        for element in value.decode("latin-1").split(","):
            if header == b"x-forwarded-for":
                hops.append(element)
                continue
            for pair in element.split(";"):
                key, _, hop = pair.strip().partition("=")
                if key.lower() == "for":
                    hops.append(hop.strip().strip('"'))
    return [split_host_port(hop) for hop in hops]


def client_address(scope: Scope, trusted: TrustedProxies) -> str:
    client = scope.get("client")
    peer: str = client[0] if client else ""
    if not trusted or not trusted.contains(peer):
        return peer
    hops = forwarded_hops(scope["headers"], trusted.header)
    for hop in reversed(hops):
        if not trusted.contains(hop):
            return hop or peer  # an empty hop tells nothing: keep the proxy (as uvicorn does)
    # Every hop trusted: the farthest one is the client.
    return hops[0] or peer if hops else peer
