"""Match keys: the DESIGN.md section 4 examples and property-based invariants."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync.matching import keys
from sync.matching.keys import (
    GENERIC_DOMAINS,
    block_upper,
    blocking_key,
    generic_domains,
    normalize_duns,
    normalize_name,
    registrable_domain,
    sorted_tokens,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://www.Shop.Acme.co.uk/about?x=1", "acme.co.uk"),
        ("münchen.de", "xn--mnchen-3ya.de"),
        ("https://MÜNCHEN.de/", "xn--mnchen-3ya.de"),
        ("acme.wixsite.com", "acme.wixsite.com"),
        ("https://acme.github.io/docs", "acme.github.io"),
        ("beta.github.io", "beta.github.io"),
        ("http://user:secret@WWW.acme.com:8080/p?q=1#frag", "acme.com"),
        ("acme.com", "acme.com"),
        ("www.acme.com", "acme.com"),
        ("acme.com.", "acme.com"),
        ("//cdn.acme.com/x.js", "acme.com"),
        ("ftp://files.acme.com", "acme.com"),
        ("sales@acme.com", "acme.com"),
        ("  Acme.COM  ", "acme.com"),
        ("https://пример.рф", "xn--e1afmkfd.xn--p1ai"),
        ("shop.acme.com.au", "acme.com.au"),
    ],
)
def test_registrable_domain_examples(value: str, expected: str) -> None:
    assert registrable_domain(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        None, "", "   ", "N/A", "-", "localhost", "intranet", "http://localhost:8080/x",
        "192.168.1.10", "http://10.0.0.1:8080/", "[::1]:443", "2001:db8::1",
        "co.uk", "github.io", "wixsite.com", "https://www.gmail.com", "bob@gmail.com",
        "linkedin.com/company/acme", "https://facebook.com/acme", "outlook.com", "yahoo.com",
        "icloud.com", "hotmail.com", "acme..com", "foo bar.com", "http://:80",
    ],
)
def test_registrable_domain_rejects_non_keys(value: str | None) -> None:
    assert registrable_domain(value) is None


def test_generic_domains_are_extendable() -> None:
    extra = generic_domains([" Example-Mail.COM ", ""])
    assert "example-mail.com" in extra
    assert extra >= GENERIC_DOMAINS
    assert registrable_domain("https://x.example-mail.com") == "example-mail.com"
    assert registrable_domain("https://x.example-mail.com", generic=extra) is None


def test_suffix_list_is_never_fetched(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("tldextract tried to reach the network")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    keys._registrable_host.cache_clear()
    keys._extractor.cache_clear()
    fresh = keys._extractor()  # made under the patch: the one every key uses
    assert fresh("x.acme.github.io").top_domain_under_public_suffix == "acme.github.io"
    assert registrable_domain("https://new-host-never-seen.example.co.uk") == "example.co.uk"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Müller & Söhne GmbH", "muller and sohne"),
        ("Acme, Inc.", "acme"),
        ("ACME Corporation", "acme"),
        ("acme corp", "acme"),
        ("Acme Ltd", "acme"),
        ("Acme Limited", "acme"),
        ("ACME S.A.", "acme"),
        ("Acme L.L.C.", "acme"),
        ("Acme GmbH & Co. KG", "acme"),
        ("Acme Pty Ltd", "acme"),
        ("Société Générale SA", "societe generale"),
        ("I.B.M. Corp", "ibm"),
        ("Ben & Jerry's", "ben and jerry s"),
        ("  Acme   Software   ", "acme software"),
        ("AB InBev", "ab inbev"),
        ("ＡＣＭＥ", "acme"),
        ("Straße AG", "strasse"),
    ],
)
def test_normalize_name_examples(value: str, expected: str) -> None:
    assert normalize_name(value) == expected


@pytest.mark.parametrize("value", [None, "", "   ", "---", "&&.,;", "\u0301"])
def test_normalize_name_empty_is_none(value: str | None) -> None:
    assert normalize_name(value) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12-345-6789", "123456789"),
        ("123456789", "123456789"),
        (" 12 345 6789 ", "123456789"),
        ("012.345.678", "012345678"),
        (12345678, "012345678"),
        ("12345678", None),
        ("1234567890", None),
        ("abcdefghi", None),
        ("000000000", None),
        ("١٢٣٤٥٦٧٨٩", None),
        (None, None),
        (True, None),
        (1.5, None),
    ],
)
def test_normalize_duns(value: object, expected: str | None) -> None:
    assert normalize_duns(value) == expected


def test_blocking_key_is_the_start_of_the_first_word() -> None:
    assert blocking_key("acme software") == blocking_key("acme sofware") == "acme"
    assert blocking_key("northwind traders") == blocking_key("northwnd traders") == "north"
    assert blocking_key("ab inbev") == "ab"
    assert blocking_key("x") == "x"


@given(st.text(alphabet="ab z\u00e9\U0001f600", min_size=1, max_size=8))
def test_block_upper_bounds_every_extension(block: str) -> None:
    block = block.strip() or "a"
    hi = block_upper(block)
    assert block < hi
    for tail in ("", " ", "zzz", "\U0010fffe"):
        assert block + tail < hi


def test_sorted_tokens_ratio_is_token_sort_ratio() -> None:
    from rapidfuzz import fuzz

    a, b = "software acme group", "acme grup software"
    assert fuzz.ratio(sorted_tokens(a), sorted_tokens(b)) == fuzz.token_sort_ratio(a, b)


# --- properties -------------------------------------------------------------------------

hosts = st.from_regex(r"[a-z0-9]([a-z0-9\-]{0,20}[a-z0-9])?(\.[a-z0-9]{1,10}){1,3}",
                      fullmatch=True)


@settings(max_examples=300)
@given(st.text())
def test_registrable_domain_never_raises(value: str) -> None:
    result = registrable_domain(value)
    assert result is None or (result.isascii() and "." in result and result == result.lower())


@settings(max_examples=300)
@given(hosts)
def test_registrable_domain_is_idempotent(host: str) -> None:
    once = registrable_domain(host)
    if once is not None:
        assert registrable_domain(once) == once
        assert registrable_domain(f"https://www.{host}/path?q=1") == once
        assert host.endswith(once)


@settings(max_examples=500)
@given(st.text())
def test_normalize_name_idempotent_and_shaped(value: str) -> None:
    once = normalize_name(value)
    if once is None:
        return
    assert normalize_name(once) == once
    assert once == once.strip()
    assert "  " not in once
    assert all(ch.isalnum() or ch == " " for ch in once)
    assert once == once.casefold()


@settings(max_examples=300)
@given(st.text(min_size=1))
def test_blocking_key_never_raises(value: str) -> None:
    name = normalize_name(value)
    if name is not None:
        assert 0 < len(blocking_key(name)) <= keys.BLOCK_PREFIX
        assert name.startswith(blocking_key(name))
        assert blocking_key(name) <= name < block_upper(blocking_key(name))


@settings(max_examples=300)
@given(st.one_of(st.text(), st.integers(), st.none()))
def test_normalize_duns_shape(value: object) -> None:
    result = normalize_duns(value)
    assert result is None or (len(result) == 9 and result.isdigit() and result.isascii())
    if result is not None:
        assert normalize_duns(result) == result
