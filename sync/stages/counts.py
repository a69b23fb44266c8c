"""What a tick counted, as data: per (source, stream), matching's figures, tick-wide events,
and each CRM's API use with its daily budget.

The run log keeps them as JSON (`sync_runs.counts`, `sync_runs.api_calls`) in the shapes
`to_json` writes; `from_json` reads those back (and the flat `"pulled.salesforce/accounts"`
keys older versions wrote), so nothing else ever parses a key.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from connectors.base import ApiUsage
from schema.records import Stream


@dataclass
class StreamCounts:
    """One CRM stream's figures in one tick."""

    pulled: int = 0  # records read
    changed: int = 0  # of those, new or changed in more than their modstamp
    deleted: int = 0  # deletions seen
    planned: int = 0  # records with owned fields to change
    written: int = 0  # records written
    fields_written: int = 0  # field values written
    failed: int = 0  # records whose write failed on its own (dead-lettered)
    manual_edits: int = 0  # users' edits of owned fields, overwritten
    deferred: int = 0  # writes put off: the API said "not now" (budget, rate limit)
    reads_deferred: int = 0  # pulls cut short so that write-back gets the budget left

    def __iadd__(self, other: StreamCounts) -> StreamCounts:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self


MEASURES = tuple(f.name for f in fields(StreamCounts))


@dataclass
class TickCounts:
    streams: dict[tuple[str, Stream], StreamCounts] = field(default_factory=dict)
    match: dict[str, int] = field(default_factory=dict)  # sync.matching.stats.MatchStats
    # Tick-wide events by name: stamped, reopened, partner_files_imported, alerts_sent, …
    tick: Counter[str] = field(default_factory=Counter)

    def of(self, source: str, stream: Stream) -> StreamCounts:
        return self.streams.setdefault((source, stream), StreamCounts())

    def totals(self) -> StreamCounts:
        out = StreamCounts()
        for counts in self.streams.values():
            out += counts
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "streams": [{"source": source, "stream": stream.value, **asdict(counts)}
                        for (source, stream), counts in sorted(self.streams.items())],
            "match": dict(self.match),
            "tick": dict(self.tick),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> TickCounts:
        out = cls()
        if not data:
            return out
        if "streams" not in data:
            return _from_flat(data)
        for row in data.get("streams") or ():
            counts = out.of(str(row["source"]), Stream(row["stream"]))
            for name in MEASURES:
                setattr(counts, name, int(row.get(name) or 0))
        out.match = {k: int(v) for k, v in (data.get("match") or {}).items()}
        out.tick = Counter({k: int(v) for k, v in (data.get("tick") or {}).items()})
        return out

    def flat(self) -> Iterator[tuple[str, int]]:
        """(name, value) pairs for one summary log line."""
        for (source, stream), counts in sorted(self.streams.items()):
            for name in MEASURES:
                value = getattr(counts, name)
                if value:
                    yield f"{name}.{source}/{stream.value}", value
        yield from ((f"match.{k}", v) for k, v in self.match.items() if v)
        yield from ((k, v) for k, v in self.tick.items() if v)


def _from_flat(data: Mapping[str, Any]) -> TickCounts:
    """The run log as versions before 0009 wrote it: `"pulled.salesforce/accounts": 3`."""
    out = TickCounts()
    for key, value in data.items():
        name, _, label = key.partition(".")
        if name == "match" and label:
            out.match[label] = int(value)
        elif "/" in label and name in MEASURES:
            source, _, stream = label.partition("/")
            counts = out.of(source, Stream(stream))
            setattr(counts, name, getattr(counts, name) + int(value))
        else:
            out.tick[key] += int(value)
    return out


@dataclass(frozen=True)
class ApiUse:
    """One CRM's API use: the calls this run made, and the org's or portal's day as the API
    last reported it (used and limit), with the cap ecosync keeps to (max_api_share)."""

    calls: int
    daily_used: int | None = None
    daily_limit: int | None = None
    daily_cap: int | None = None

    @classmethod
    def of(cls, usage: ApiUsage, calls: int) -> ApiUse:
        return cls(calls, usage.daily_used, usage.daily_limit, usage.daily_cap)

    def budget_words(self) -> str:
        """`1,234 of 15,000 calls today (8%); ecosync stops at 7,500 (50%)`: what status,
        the web's operations page and /metrics all say (the cap as the connector set it)."""
        if not self.daily_limit:
            return f"{self.calls:,} calls this run; the CRM reported no daily limit"
        used = self.daily_used or 0
        words = f"{used:,} of {self.daily_limit:,} calls today ({used / self.daily_limit:.0%})"
        if self.daily_cap is None:
            return words
        return (f"{words}; ecosync stops at {self.daily_cap:,} "
                f"({self.daily_cap / self.daily_limit:.0%})")


def api_to_json(api: Mapping[str, ApiUse]) -> dict[str, Any]:
    return {name: asdict(use) for name, use in api.items()}


def api_from_json(data: Mapping[str, Any] | None) -> dict[str, ApiUse]:
    """Each CRM's ApiUse from the run log (also the flat `"name"` / `"name.daily_limit"`
    keys older versions wrote)."""
    out: dict[str, ApiUse] = {}
    for name, value in (data or {}).items():
        if isinstance(value, Mapping):
            out[name] = ApiUse(int(value.get("calls") or 0), value.get("daily_used"),
                               value.get("daily_limit"), value.get("daily_cap"))
        elif "." not in name:
            flat = data or {}
            out[name] = ApiUse(int(value), flat.get(f"{name}.daily_used"),
                               flat.get(f"{name}.daily_limit"))
    return out
