from ipaddress import ip_network
from typing import Any

import pytest
from pydantic import ValidationError

from {{ cookiecutter.package_name }}.security.client import TrustedProxies, client_address
from {{ cookiecutter.package_name }}.settings import ENV_PREFIX, Settings, problems

from .conftest import production_settings

PROXIES = TrustedProxies([ip_network("10.0.0.0/8"), ip_network("127.0.0.1")])
FORWARDING_PROXIES = TrustedProxies(PROXIES.networks, "forwarded")


def scope(peer: str | None, *headers: tuple[str, str]) -> dict[str, Any]:
    return {
        "client": (peer, 40000) if peer else None,
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers],
    }


def test_without_trusted_proxies_the_socket_peer_is_the_client() -> None:
    request = scope("127.0.0.1", ("X-Forwarded-For", "6.6.6.6"))
    assert client_address(request, TrustedProxies([])) == "127.0.0.1"


def test_an_untrusted_peer_cannot_choose_its_address() -> None:
    request = scope("203.0.113.9", ("X-Forwarded-For", "6.6.6.6"), ("Forwarded", "for=7.7.7.7"))
    assert client_address(request, PROXIES) == "203.0.113.9"


@pytest.mark.parametrize(
    ("chain", "client"),
    [
        ("198.51.100.7", "198.51.100.7"),
        # The client sent a forged first hop; our proxy appended the real peer.
        ("6.6.6.6, 198.51.100.7", "198.51.100.7"),
        # Two trusted hops (a CIDR and a single address) are skipped, nearest first.
        ("198.51.100.7, 10.2.3.4, 127.0.0.1", "198.51.100.7"),
        ("198.51.100.7:5555, 10.2.3.4", "198.51.100.7"),
        ("10.9.9.9, 10.2.3.4", "10.9.9.9"),  # all trusted: the farthest one
        ("198.51.100.7, ", "10.0.0.1"),  # an empty hop tells nothing
        ("unknown, 10.2.3.4", "unknown"),
    ],
)
def test_a_trusted_peer_forwards_the_nearest_untrusted_hop(chain: str, client: str) -> None:
    assert client_address(scope("10.0.0.1", ("X-Forwarded-For", chain)), PROXIES) == client


def test_repeated_forwarded_for_headers_make_one_chain() -> None:
    request = scope("127.0.0.1", ("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "10.1.1.1"))
    assert client_address(request, PROXIES) == "6.6.6.6"


@pytest.mark.parametrize(
    ("forwarded", "client"),
    [
        ("for=198.51.100.7;proto=https", "198.51.100.7"),
        ('for="[2001:db8::1]:4711"', "2001:db8::1"),
        ("for=6.6.6.6, For=198.51.100.7;by=10.0.0.1, for=10.3.3.3", "198.51.100.7"),
        ("proto=https", "10.0.0.1"),
    ],
)
def test_the_forwarded_header_is_read_when_the_proxies_write_it(
    forwarded: str, client: str
) -> None:
    request = scope("10.0.0.1", ("Forwarded", forwarded))
    assert client_address(request, FORWARDING_PROXIES) == client


def test_only_the_header_the_proxies_write_is_read() -> None:
    """The client's own copy of the other header passes through the proxy untouched: it must
    not choose the address (its rate-limit bucket)."""
    request = scope("10.0.0.1", ("Forwarded", "for=7.7.7.7"), ("X-Forwarded-For", "8.8.8.8"))
    assert client_address(request, FORWARDING_PROXIES) == "7.7.7.7"
    assert client_address(request, PROXIES) == "8.8.8.8"
    assert client_address(scope("10.0.0.1", ("Forwarded", "for=7.7.7.7")), PROXIES) == "10.0.0.1"


def test_the_header_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(_env_file=None).forwarded_header == "x-forwarded-for"
    monkeypatch.setenv(f"{ENV_PREFIX}FORWARDED_HEADER", "forwarded")
    assert Settings(_env_file=None).forwarded_header == "forwarded"
    monkeypatch.setenv(f"{ENV_PREFIX}FORWARDED_HEADER", "x-real-ip")
    with pytest.raises(ValidationError):
        Settings(_env_file=None)


def test_a_scope_without_a_client_has_an_empty_address() -> None:
    assert client_address(scope(None), PROXIES) == ""


def test_trusted_proxies_take_addresses_and_cidrs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}TRUSTED_PROXIES", "10.0.0.5, 10.1.0.0/16,::1")
    settings = Settings(_env_file=None)
    assert [str(n) for n in settings.trusted_proxies] == ["10.0.0.5/32", "10.1.0.0/16", "::1/128"]
    assert TrustedProxies(settings.trusted_proxies).contains("10.1.200.3")


def test_production_refuses_to_trust_every_address() -> None:
    with pytest.raises(ValidationError, match="covers every address") as error:
        Settings(_env_file=None, **production_settings(trusted_proxies=["0.0.0.0/0"]))
    assert [name for name, _ in problems(error.value)] == ["trusted_proxies"]
