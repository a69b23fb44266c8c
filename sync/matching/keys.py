"""Match keys (DESIGN.md section 4): registrable domain, normalized name, DUNS, blocking key.

Pure functions, computed once at ingest/import and stored on the row (`domain_key`,
`name_key`, `duns`), so matching itself is a plain indexed join in the warehouse. They never
raise on arbitrary text: a value that cannot be a key is `None`.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Iterable
from functools import cache, lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tldextract

# Free mail, social networks and site builders' apex domains: many unrelated companies share
# them, so they are never match keys. Extended per deployment by `matching.generic_domains`.
GENERIC_DOMAINS: frozenset[str] = frozenset(
    {
        "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "hotmail.co.uk",
        "hotmail.fr", "live.com", "msn.com", "yahoo.com", "yahoo.co.uk", "yahoo.fr",
        "ymail.com", "aol.com", "icloud.com", "me.com", "mac.com", "proton.me",
        "protonmail.com", "gmx.com", "gmx.de", "gmx.net", "web.de", "mail.com", "mail.ru",
        "yandex.com", "yandex.ru", "zoho.com", "qq.com", "163.com", "126.com",
        "linkedin.com", "facebook.com", "fb.com", "instagram.com", "twitter.com", "x.com",
        "youtube.com", "tiktok.com", "pinterest.com", "reddit.com", "medium.com",
        "bit.ly", "linktr.ee", "wordpress.com", "blogspot.com",
    }
)


@cache
def _extractor() -> tldextract.TLDExtract:
    """The bundled Public Suffix List snapshot, private section included (acme.github.io and
    acme.wixsite.com are distinct companies). No suffix_list_urls and no cache dir: tldextract
    can neither fetch the list nor write a cache file, at run time or in tests. Made on first
    use: tldextract loads an HTTP client, which commands that compute no key never need."""
    import tldextract

    return tldextract.TLDExtract(
        suffix_list_urls=(), cache_dir=None, include_psl_private_domains=True)


_SCHEME = re.compile(r"^[a-z][a-z0-9+.\-]*://|^//")
_HOST_END = re.compile(r"[/?#\\\s]")
_ASCII_HOST = re.compile(r"^[a-z0-9_\-.]+$")


def generic_domains(extra: Iterable[str]) -> frozenset[str]:
    """The built-in generic domains plus the configured ones (lower-cased, stripped)."""
    return GENERIC_DOMAINS | frozenset(d.strip().lower().strip(".") for d in extra if d.strip())


def registrable_domain(
    value: str | None, *, generic: frozenset[str] = GENERIC_DOMAINS
) -> str | None:
    """eTLD+1 of a website, URL, bare domain or e-mail address; None when it is no key.

    `https://www.Shop.Acme.co.uk/about?x=1` → `acme.co.uk`; `münchen.de` → `xn--mnchen-3ya.de`;
    IP addresses, bare hosts (no public suffix) and generic domains → None.
    """
    if not value:
        return None
    host = _host(value)
    if host is None:
        return None
    domain = _registrable_host(host)
    if domain is None or domain in generic:
        return None
    return domain


def _host(value: str) -> str | None:
    """The host part of a URL-ish value, lower-cased, without credentials, port or www."""
    text = value.strip().lower()
    text = _SCHEME.sub("", text, count=1)
    end = _HOST_END.search(text)
    if end is not None:
        text = text[: end.start()]
    text = text.rpartition("@")[2]  # credentials, or the local part of an e-mail address
    if text.startswith("["):
        return None  # bracketed IPv6 literal
    if text.count(":") == 1:
        text, _, port = text.partition(":")
        if port and not port.isdigit():
            return None
    elif ":" in text:
        return None  # bare IPv6 literal
    text = text.strip(".")
    if text.startswith("www."):
        text = text[4:]
    return text or None


@lru_cache(maxsize=1 << 18)
def _registrable_host(host: str) -> str | None:
    # Cached on the host: CRM exports repeat hosts a lot, and the suffix lookup dominates.
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return None
    if not host.isascii():
        try:
            # The standard library's IDNA codec (IDNA 2003 with nameprep): the same mapping on
            # every side of a match, and no dependency beyond the standard library.
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    if not _ASCII_HOST.match(host) or ".." in host:
        return None
    parts = _extractor().extract_str(host)
    if not parts.suffix or not parts.domain:
        return None  # bare host ("localhost", "intranet") or a public suffix itself
    return f"{parts.domain}.{parts.suffix}"


# Legal-form tokens dropped from names (DESIGN.md 4, plus a few common equivalents).
LEGAL_SUFFIXES: frozenset[str] = frozenset(
    {
        "inc", "incorporated", "llc", "ltd", "limited", "corp", "corporation", "co", "gmbh",
        "ag", "sa", "sas", "bv", "nv", "plc", "pty", "llp", "oy", "ab", "srl", "spa", "sarl",
        "kk", "kg", "lp", "pte", "pvt", "ltda",
    }
)
# "S.A.", "L.L.C.", "G.m.b.H.": dotted single letters collapse first, so the legal form is
# recognised (and "I.B.M." becomes "ibm", like the undotted spelling).
_DOTTED = re.compile(r"(?<!\w)(?:\w\.){2,}(?:\w(?!\w))?")


def _strip_marks(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def normalize_name(value: str | None) -> str | None:
    """Company name → comparison key: `Müller & Söhne GmbH` → `muller and sohne`.

    NFKD, accents dropped, casefolded, `&` → `and`, punctuation → spaces, legal-form tokens
    dropped (except a leading one: "AB InBev", "SA Power"), spaces collapsed; empty → None.
    """
    if not value:
        return None
    # Casefolding can produce characters NFKD decomposes again ("ẞ", "İ"): strip marks twice.
    text = _strip_marks(_strip_marks(value).casefold())
    text = _DOTTED.sub(lambda m: m.group(0).replace(".", ""), text)
    text = text.replace("&", " and ")
    cleaned = "".join(ch if ch.isalnum() else " " for ch in text)
    tokens = cleaned.split()
    if not tokens:
        return None
    kept = tokens[:1] + [t for t in tokens[1:] if t not in LEGAL_SUFFIXES]
    # "Acme GmbH & Co. KG" leaves a dangling "and" once the legal forms are gone.
    while kept and kept[-1] == "and":
        kept.pop()
    return " ".join(kept) or None


def sorted_tokens(name_key: str) -> str:
    """The name key with its tokens sorted: what rapidfuzz's token_sort_ratio compares.

    Sorting once per row lets the engine score with plain `fuzz.ratio`, which is exactly
    token_sort_ratio without re-sorting both strings on every comparison.
    """
    return " ".join(sorted(name_key.split()))


BLOCK_PREFIX = 5


def blocking_key(name_key: str) -> str:
    """The fuzzy-matching block of a name key: the first 5 characters of its first word.

    Why this key: every string of a block starts with it, so a block is one range of the
    `name_key` index (`block <= name_key < next(block)`): an incremental run fetches only the
    few rows of the blocks it needs, whatever the size of the partner lists. Five characters
    of the first word keep blocks small (tens of rows per million names, where a bare 3-letter
    prefix gives thousands: "the", "int", "pro"); a word shorter than 5 letters is the whole
    block, so "ibm" and "ibm global" meet.
    Recall: a name pair scoring >= 92 differs by one or two edits, which almost always fall
    after the first letters of the leading word. What it gives up: reordered words ("Software
    Acme" / "Acme Software") and typos in the first five letters are not compared; such pairs
    need a pin (`ecosync match pin`).
    """
    return blocking_keys((name_key,))[0]


def blocking_keys(name_keys: Iterable[str]) -> list[str]:
    """`blocking_key` of each name, in one comprehension: a full match computes it for every
    name of the warehouse, and a Python call per name cost a third of its fuzzy stage."""
    # name_key.split(" ", 1)[0][:BLOCK_PREFIX], without splitting the whole name.
    return [head if (space := (head := name[:BLOCK_PREFIX]).find(" ")) < 0 else head[:space]
            for name in name_keys]


def block_upper(block: str) -> str:
    """The smallest string above every string starting with `block`, in code point order."""
    nxt = ord(block[-1]) + 1 if block else 0x10FFFF
    if 0xD800 <= nxt <= 0xDFFF:
        nxt = 0xE000  # surrogates cannot be stored
    return block[:-1] + chr(min(nxt, 0x10FFFF))


_DUNS_SEPARATORS = re.compile(r"[\s\-.]")


def normalize_duns(value: object) -> str | None:
    """A DUNS number as 9-digit text (dashes, dots and spaces stripped); anything else → None.

    Kept as text because leading zeros are significant; an int of up to 9 digits is padded
    (spreadsheets drop leading zeros).
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return f"{value:09d}" if 0 < value < 10**9 else None
    if not isinstance(value, str):
        return None
    digits = _DUNS_SEPARATORS.sub("", value)
    if len(digits) == 9 and digits.isascii() and digits.isdigit() and digits != "000000000":
        return digits
    return None
