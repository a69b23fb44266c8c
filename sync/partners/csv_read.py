"""Read and validate a partner CSV: decoding, column mapping, one parsed row per good record.

Nothing here touches the warehouse. The reader streams the file (it never holds the raw text)
and reports every bad row with the line it starts on, so `csv_import` can refuse a bad file as
a whole or, with `skip_invalid`, keep the good rows and list the rest.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import itertools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from schema.records import Population
from sync.errors import UserError
from sync.matching.keys import (
    GENERIC_DOMAINS,
    normalize_duns,
    normalize_name,
    registrable_domain,
)

FIELDS = ("external_id", "name", "domain", "website", "population", "owner_name",
          "owner_email", "duns")
# Header spellings recognised without any config, first match wins (compared after
# lower-casing and turning spaces, hyphens and dots into underscores).
ALIASES: Mapping[str, tuple[str, ...]] = {
    "external_id": ("external_id", "id", "account_id", "record_id", "partner_account_id"),
    "name": ("name", "company", "company_name", "account_name", "account", "organization",
             "organisation", "organization_name"),
    "domain": ("domain", "company_domain", "domain_name", "email_domain"),
    "website": ("website", "url", "web", "site", "homepage", "company_website", "website_url"),
    "population": ("population", "relationship", "status", "relationship_status",
                   "account_status"),
    "owner_name": ("owner_name", "owner", "account_owner", "account_owner_name", "rep",
                   "rep_name", "contact_name"),
    "owner_email": ("owner_email", "email", "account_owner_email", "rep_email",
                    "contact_email", "owner_e_mail"),
    "duns": ("duns", "duns_number", "d_u_n_s"),
}
POPULATION_SYNONYMS: Mapping[str, Population] = {
    **{w: Population.CUSTOMER for w in ("customer", "customers", "client", "clients",
                                        "current_customer", "active_customer", "closed_won")},
    **{w: Population.OPEN_OPPORTUNITY for w in (
        "open_opportunity", "opportunity", "open_opp", "opp", "open_deal", "pipeline",
        "in_pipeline", "open_opportunities", "opportunities")},
    **{w: Population.PROSPECT for w in ("prospect", "prospects", "lead", "leads", "target")},
}
MAX_CELL = 1000  # characters; longer cells are pasted blobs, not account data
# Columns stored in VARCHAR(255) on PostgreSQL: longer values would fail the insert there.
SHORT_FIELDS = ("external_id", "name", "owner_name", "owner_email")
MAX_SHORT = 255
_EMAIL = re.compile(r"^[^@\s<>(),;:\"\[\]]+@[^@\s<>(),;:\"\[\]]+\.[^@\s<>(),;:\"\[\].]{2,}$")
_SEP = re.compile(r"[\s\-.]+")
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)")
DELIMITERS = (",", ";", "\t", "|")


@dataclass(frozen=True, slots=True)
class RowProblem:
    line: int
    column: str | None
    message: str

    def describe(self) -> str:
        where = f"line {self.line}" + (f", column '{self.column}'" if self.column else "")
        return f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class ParsedRow:
    line: int
    external_id: str | None
    name: str | None
    domain: str | None
    website: str | None
    population: Population
    owner_name: str | None
    owner_email: str | None
    duns: str | None
    domain_key: str | None
    name_key: str | None


@dataclass(frozen=True)
class ReadResult:
    rows: list[ParsedRow]
    problems: list[RowProblem]
    fingerprint: str  # sha256 of the file's bytes
    columns: Mapping[str, str]  # logical field -> header used


def canonical_header(value: str) -> str:
    return _SEP.sub("_", value.strip().lstrip("\ufeff").lower()).strip("_")


def parse_population(value: str) -> Population | None:
    return POPULATION_SYNONYMS.get(canonical_header(value))


def check_encoding(encoding: str, path: Path) -> str:
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise UserError(
            f"{path}: unknown encoding '{encoding}'; use a Python codec name such as utf-8, "
            "utf-8-sig, cp1252 or latin-1"
        ) from None


def _lines(fh: BinaryIO, encoding: str, path: Path, digest: hashlib._Hash) -> Iterator[str]:
    """Decoded lines (ends kept; CRLF, LF or a lone CR), hashing the raw bytes on the way; a
    decode error names the line. Feeding byte lines to an incremental decoder is exact for
    any codec: a multi-byte sequence split across chunks is buffered by the decoder."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    pending = ""
    line_no = 1
    for raw in fh:
        digest.update(raw)
        try:
            pending += decoder.decode(raw)
        except UnicodeDecodeError as exc:
            raise UserError(
                f"{path}: line {line_no} is not valid {encoding} ({exc.reason}); save the "
                f"file as UTF-8 or pass --encoding with the file's real encoding (e.g. cp1252)"
            ) from None
        consumed = 0
        for match in _LINE.finditer(pending):
            if match.end() == len(pending) and pending.endswith("\r"):
                break  # a CR at the end of the chunk may be the first half of a CRLF
            consumed = match.end()
            line_no += 1
            yield match.group()
        pending = pending[consumed:]
    try:
        pending += decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: line {line_no}: the file ends inside a {encoding} character "
                        f"({exc.reason}); the file is truncated or not {encoding}") from None
    yield from _LINE.findall(pending + ("" if pending.endswith(("\n", "\r")) else "\n"))


def _delimiter(first_line: str) -> str:
    """',' unless the header line clearly uses ';' (European Excel), a tab or '|'."""
    counts = {d: first_line.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: (counts[d], d == ","))
    return best if counts[best] > counts[","] else ","


def _csv_error(path: Path, line: int, exc: csv.Error) -> UserError:
    text = str(exc)
    if "field larger than field limit" in text:
        hint = ("a cell runs past 131072 characters: an unclosed quote probably swallowed "
                "the rest of the file; close the quote on that line")
    elif "new-line character" in text:
        hint = "a line break inside an unquoted cell; quote that cell"
    else:
        hint = "check the quotes on that line"
    return UserError(f"{path}: line {line}: malformed CSV ({text}); {hint}")


def resolve_columns(header: list[str], mapping: Mapping[str, str] | None,
                    path: Path, line: int = 1) -> dict[str, int]:
    """Logical field -> column index, from the configured mapping, else the aliases."""
    positions: dict[str, int] = {}
    for i, cell in enumerate(header):
        positions.setdefault(canonical_header(cell), i)
    found: dict[str, int] = {}
    for logical, header_name in (mapping or {}).items():
        if logical not in FIELDS:
            raise UserError(f"{path}: column mapping names unknown field '{logical}'; map "
                            f"only {', '.join(FIELDS)}")
        index = positions.get(canonical_header(header_name))
        if index is None:
            raise UserError(f"{path}: line {line}: the mapped column '{header_name}' (for "
                            f"{logical}) is not in the header; columns found: "
                            f"{', '.join(repr(h) for h in header)}")
        found[logical] = index
    for logical in FIELDS:
        if logical in found or (mapping and logical in mapping):
            continue
        for alias in ALIASES[logical]:
            if alias in positions and positions[alias] not in found.values():
                found[logical] = positions[alias]
                break
    if "population" not in found:
        raise UserError(f"{path}: line {line}: no population column (expected one of "
                        f"{', '.join(ALIASES['population'])}); add it or map "
                        f"columns.population in the partner's config")
    if not {"name", "domain", "website"} & found.keys():
        raise UserError(f"{path}: line {line}: no name, domain or website column (expected e.g. "
                        f"'name', 'company', 'domain', 'website'); add one or map it in "
                        f"the partner's columns config")
    return found


@dataclass
class ReadInfo:
    """What a pass over the file learnt besides its records; complete once it is exhausted."""

    fingerprint: str = ""  # sha256 of the file's bytes
    columns: dict[str, str] = field(default_factory=dict)  # logical field -> header used
    header_cells: int = 0


Record = ParsedRow | RowProblem


def iter_partner_csv(path: Path, *, encoding: str = "utf-8-sig",
                     columns: Mapping[str, str] | None = None,
                     generic: frozenset[str] = GENERIC_DOMAINS,
                     info: ReadInfo | None = None) -> Iterator[Record]:
    """Parse and validate the file record by record, in file order: a good record yields its
    `ParsedRow`, a bad one yields one `RowProblem` per problem. Nothing is held but the
    current record, so any size of file streams in constant memory.

    Row-local rules only: a repeated external id needs every earlier id, so it is checked
    where the rows are staged (`sync.partners.staging`), not here. A file-level fault (no
    header, undecodable bytes, a broken quote) raises `UserError`."""
    encoding = check_encoding(encoding, path)
    info = info if info is not None else ReadInfo()
    digest = hashlib.sha256()
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise UserError(f"{path}: cannot open the partner file ({exc.strerror}); check the "
                        f"path and its permissions") from None
    with fh:
        lines = _lines(fh, encoding, path, digest)
        first = next(lines, "")
        reader = csv.reader(itertools.chain([first], lines), delimiter=_delimiter(first))
        header: list[str] | None = None
        index: dict[str, int] = {}
        end = 0
        while True:
            start = end + 1
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                raise _csv_error(path, start, exc) from None
            end = reader.line_num
            if not any(c.strip() for c in cells):
                continue  # blank lines and rows of empty cells carry nothing
            if header is None:
                header = cells
                index = resolve_columns(header, columns, path, start)
                info.columns = {f: header[i] for f, i in index.items()}
                info.header_cells = len(header)
                continue
            yield from parse_record(start, cells, header, index, generic)
    if header is None:
        raise UserError(f"{path}: the file is empty; a partner CSV needs a header line "
                        f"(name, domain, population, …) and one line per account")
    info.fingerprint = digest.hexdigest()


def file_sha256(path: Path) -> str:
    """The file's sha256, read in blocks (cheap next to parsing: an unchanged file is
    recognised without parsing it)."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
    except OSError as exc:
        raise UserError(f"{path}: cannot open the partner file ({exc.strerror}); check the "
                        f"path and its permissions") from None
    return digest.hexdigest()


def parse_record(line: int, cells: list[str], header: list[str], index: Mapping[str, int],
                 generic: frozenset[str],
                 keys: tuple[str | None, str | None] | None = None) -> Iterator[Record]:
    """One record's problems, or its parsed row. Messages name the line and column, never a
    cell's value: the value may belong to a population the partner hides, and it reaches
    logs, `doctor` and run records (issue 15.6). `keys`: the (name key, domain key) of the
    cells when already computed by `sync.matching.keys` (an export of warehouse rows)."""
    problems: list[RowProblem] = []

    def bad(column: str | None, message: str) -> None:
        problems.append(RowProblem(line, column, message))

    if len(cells) != len(header):
        yield RowProblem(line, None, f"has {len(cells)} cells but the header has "
                                     f"{len(header)}; check for a missing or extra comma or "
                                     f"an unclosed quote")
        return
    for i, cell in enumerate(cells):
        if len(cell) > MAX_CELL:
            bad(header[i], f"cell is {len(cell)} characters long (limit {MAX_CELL}); "
                           f"shorten it")
        elif "\x00" in cell:
            # PostgreSQL cannot store NUL, and it usually means a UTF-16 file read as UTF-8.
            bad(header[i], "contains a NUL character; if the file is UTF-16, pass "
                           "--encoding utf-16")
    if problems:
        yield from problems
        return
    values = {f: (cells[i].strip() or None) for f, i in index.items()}
    for f in SHORT_FIELDS:
        value = values.get(f)
        if value is not None and len(value) > MAX_SHORT:
            bad(header[index[f]], f"{f} is {len(value)} characters long (limit {MAX_SHORT})")
    name, domain, website = values.get("name"), values.get("domain"), values.get("website")
    if keys is not None:
        name_key, domain_key = keys
    else:
        name_key = normalize_name(name)
        domain_key = registrable_domain(domain, generic=generic) if domain else None
        if domain_key is None and website:
            domain_key = registrable_domain(website, generic=generic)
    if domain_key is not None and len(domain_key) > 253:
        bad(header[index["domain" if domain else "website"]],
            "is not a valid host name (longer than 253 characters)")
    if name_key is not None and len(name_key) > MAX_SHORT:
        # '&' becomes ' and ' and 'ß' becomes 'ss': a name can grow past the key column.
        bad(header[index["name"]], f"name is too long to compare (over {MAX_SHORT} "
                                   f"characters once normalized); shorten it")
    if name_key is None and domain_key is None:
        bad(None, "has neither a company name nor a usable domain" + (
            " (its domain is a free-mail, social, IP or bare host, never a match key)"
            if domain or website else "") + "; fill in the name or the company's website")
    population = parse_population(values.get("population") or "")
    if population is None:
        bad(header[index["population"]],
            "unknown population; use customer, open_opportunity (or 'opportunity') or "
            "prospect")
    email = values.get("owner_email")
    if email is not None and not _EMAIL.match(email):
        bad(header[index["owner_email"]], "not an e-mail address; fix it or leave the cell "
                                          "empty")
    raw_duns = values.get("duns")
    duns = normalize_duns(raw_duns) if raw_duns else None
    if raw_duns and duns is None:
        bad(header[index["duns"]], "not a 9-digit DUNS number")
    if problems or population is None:
        yield from problems
        return
    yield ParsedRow(line, values.get("external_id"), name, domain, website, population,
                    values.get("owner_name"), email, duns, domain_key, name_key)


def base_row_key(row: ParsedRow) -> str:
    """A row's identity within one partner's list before repeats are numbered: external id,
    else domain key, else name key (`staging` appends `#n` to the n-th repeat)."""
    if row.external_id is not None:
        base = f"x:{row.external_id}"
    elif row.domain_key is not None:
        base = f"d:{row.domain_key}"
    else:
        assert row.name_key is not None  # validated: a name or a usable domain
        base = f"n:{row.name_key}"
    if len(base) > 200:  # row_key is VARCHAR(255), with room for a "#n" suffix
        base = f"{base[:2]}sha256:{hashlib.sha256(base.encode()).hexdigest()}"
    return base
