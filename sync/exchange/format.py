"""The ecosync exchange format, version 1 (docs/exchange-format.md): a manifest (JSON) beside
a CSV of rows. Pure: what the files say, how they are named, and what makes them valid.

    <base>.manifest.json   {"format": "ecosync-exchange", "schema_version": 1, ...}
    <base>.csv             name,domain,duns,population,owner_name,owner_email,stage,
                           last_activity_date

A population the sender shares at `names` has rows without owner, stage or activity; at
`full` rows may carry them; at `counts` it has no rows, only its count in the manifest; a
`hidden` one has neither rows nor count. A reader refuses a file whole when any of that does
not hold, naming the field, and refuses a version newer than `SCHEMA_VERSION`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sync.errors import UserError
from sync.sharing import COUNTED, NAMED, Level

FORMAT = "ecosync-exchange"
SCHEMA_VERSION = 1
POPULATIONS = ("customer", "open_opportunity", "prospect")
COLUMNS = ("name", "domain", "duns", "population", "owner_name", "owner_email", "stage",
           "last_activity_date")
FULL_ONLY = ("owner_name", "owner_email", "stage", "last_activity_date")
MANIFEST_SUFFIX = ".manifest.json"
PLAIN_COLUMNS = ("Company Name", "Website")
GUIDE = "docs/exchange-format.md"
MAX_MANIFEST_BYTES = 1 << 20  # a manifest is a few hundred bytes; anything larger is not one


@dataclass(frozen=True)
class Manifest:
    schema_version: int
    generated_at: datetime
    organisation: str
    policy: dict[str, Level]  # every population
    counts: dict[str, int]  # every population not hidden
    rows_file: str  # the CSV's file name, beside the manifest
    rows: int
    sha256: str

    def as_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "schema_version": self.schema_version,
            "generated_at": self.generated_at.isoformat().replace("+00:00", "Z"),
            "organisation": self.organisation,
            "policy": {p: str(level) for p, level in self.policy.items()},
            "counts": dict(self.counts),
            "rows": {"file": self.rows_file, "count": self.rows, "sha256": self.sha256,
                     "columns": list(COLUMNS)},
        }

    def named_populations(self) -> list[str]:
        return [p for p in POPULATIONS if self.policy[p] in NAMED]

    def counts_only(self) -> dict[str, int]:
        return {p: n for p, n in self.counts.items() if self.policy[p] is Level.COUNTS}


def manifest_path(rows_path: Path) -> Path:
    return rows_path.with_name(rows_path.stem + MANIFEST_SUFFIX)


def looks_like_exchange_rows(first_line: str) -> bool:
    return first_line.strip().lstrip("\ufeff") == ",".join(COLUMNS)


class ExchangeFileError(UserError):
    """An exchange file refused whole; nothing was imported."""


def _fail(where: Path, field: str | None, problem: str) -> ExchangeFileError:
    """`field` None: the fault is the whole file (not JSON, too large), not one field."""
    subject = "the manifest" if field is None else f"field '{field}'"
    return ExchangeFileError(
        f"{where}: {subject} {problem}; nothing was imported. Ask the partner to export "
        f"again with `ecosync share export` ({GUIDE})")


def read_manifest(path: Path) -> Manifest:
    """Parse and validate a manifest; every fault names its field."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read the exchange manifest ({exc.strerror}); check "
                        f"the path and its permissions") from None
    if len(raw) > MAX_MANIFEST_BYTES:
        raise _fail(path, None, f"is {len(raw):,} bytes, too large to be one")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _fail(path, None, f"is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise _fail(path, None, "is not a JSON object")
    if data.get("format") != FORMAT:
        raise _fail(path, "format", f"must be \"{FORMAT}\"")
    version = data.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _fail(path, "schema_version", "must be a whole number from 1")
    if version > SCHEMA_VERSION:
        raise ExchangeFileError(
            f"{path}: field 'schema_version' is {version}, newer than this ecosync reads "
            f"(version {SCHEMA_VERSION}); nothing was imported. Upgrade ecosync, or ask the "
            f"partner to export version {SCHEMA_VERSION} ({GUIDE})")
    generated = data.get("generated_at")
    try:
        generated_at = datetime.fromisoformat(str(generated).replace("Z", "+00:00"))
    except ValueError:
        generated_at = None
    if not isinstance(generated, str) or generated_at is None or generated_at.tzinfo is None:
        raise _fail(path, "generated_at", "must be an ISO 8601 time with its zone, e.g. "
                                          "\"2026-03-01T12:00:00Z\"")
    organisation = data.get("organisation")
    if not isinstance(organisation, str) or not organisation.strip() or len(organisation) > 255:
        raise _fail(path, "organisation", "must be the sender's name (1-255 characters)")
    policy = _policy(path, data.get("policy"))
    counts = _counts(path, data.get("counts"), policy)
    rows = data.get("rows")
    if not isinstance(rows, dict):
        raise _fail(path, "rows", "must be an object (file, count, sha256, columns)")
    file_name = rows.get("file")
    if not isinstance(file_name, str) or Path(file_name).name != file_name \
            or not file_name.endswith(".csv"):
        raise _fail(path, "rows.file", "must be the name of a .csv file beside the manifest")
    count = rows.get("count")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise _fail(path, "rows.count", "must be a whole number")
    named = sum(counts[p] for p in POPULATIONS if policy[p] in NAMED)
    if count != named:
        raise _fail(path, "rows.count", f"is {count}, but counts of the populations shared "
                                        f"by name add up to {named}")
    sha = rows.get("sha256")
    if not isinstance(sha, str) or len(sha) != 64 or any(c not in "0123456789abcdef"
                                                         for c in sha):
        raise _fail(path, "rows.sha256", "must be 64 lower-case hex digits")
    if rows.get("columns") != list(COLUMNS):
        raise _fail(path, "rows.columns", f"must be {list(COLUMNS)} in version "
                                          f"{SCHEMA_VERSION}")
    return Manifest(version, generated_at, organisation.strip(), policy, counts, file_name,
                    count, sha)


def _policy(path: Path, raw: Any) -> dict[str, Level]:
    if not isinstance(raw, dict) or set(raw) != set(POPULATIONS):
        raise _fail(path, "policy", f"must give a level for each of {', '.join(POPULATIONS)}")
    out: dict[str, Level] = {}
    for population in POPULATIONS:
        try:
            out[population] = Level(raw[population])
        except ValueError:
            raise _fail(path, f"policy.{population}",
                        f"must be one of {', '.join(str(level) for level in Level)}") from None
    return out


def _counts(path: Path, raw: Any, policy: Mapping[str, Level]) -> dict[str, int]:
    if not isinstance(raw, dict):
        raise _fail(path, "counts", "must be an object of population -> accounts")
    out: dict[str, int] = {}
    for population in POPULATIONS:
        shared = policy[population] in COUNTED
        if population not in raw:
            if shared:
                raise _fail(path, f"counts.{population}", "is missing (the population is "
                                                          "shared)")
            continue
        if not shared:
            raise _fail(path, f"counts.{population}", "must be absent: the population is "
                                                      "hidden")
        value = raw[population]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _fail(path, f"counts.{population}", "must be a whole number")
        out[population] = value
    unknown = sorted(set(raw) - set(POPULATIONS))
    if unknown:
        raise _fail(path, f"counts.{unknown[0]}", "is not a population")
    return out


def row_policy_problem(cells: list[str], policy: Mapping[str, Level]) -> str | None:
    """Why a row exceeds the sender's policy (its population's level), else None. Names the
    field, never a value."""
    if len(cells) != len(COLUMNS):
        return f"has {len(cells)} cells, not {len(COLUMNS)}"
    values = dict(zip(COLUMNS, cells, strict=True))
    population = values["population"]
    if population not in POPULATIONS:
        return "field 'population' must be one of " + ", ".join(POPULATIONS)
    level = policy[population]
    if level not in NAMED:
        return (f"is a row of population {population}, which the manifest shares at "
                f"{level}: no row may carry it")
    if level is not Level.FULL:
        for column in FULL_ONLY:
            if values[column].strip():
                return (f"field '{column}' is filled on a row of population {population}, "
                        f"which the manifest shares at {level} (only full rows carry it)")
    return None
