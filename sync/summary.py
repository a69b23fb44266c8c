"""A tick's outcome in words (`pulled 900, wrote 802 fields on 473 records, 2 dead letters`),
for the sync and backfill commands and the demo. The counter dump stays for JSON output.

Built over `TickReport.counts`, whose keys are `<what>.<source>/<stream>` or plain names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _total(counts: Mapping[str, int], prefix: str) -> int:
    return sum(v for k, v in counts.items() if k.startswith(prefix + "."))


def _plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else many or word + 's'}"


def tick_summary(report: Any, *, dry_run: bool = False) -> str:
    """One line: what the tick pulled, matched, stamped and wrote, and what failed."""
    counts: Mapping[str, int] = report.counts
    parts = [f"pulled {_total(counts, 'pulled'):,}"]
    deleted = _total(counts, "deleted")
    if deleted:
        parts[-1] += f" ({deleted:,} deleted)"
    new, ended = counts.get("match.inserted", 0), counts.get("match.ended", 0)
    if new or ended:
        parts.append(f"{_plural(new, 'new overlap')}, {ended:,} ended")
    imported = counts.get("partner_files_imported", 0)
    if imported:
        parts.append(f"imported {_plural(imported, 'partner file')}")
    stamped = counts.get("stamped", 0)
    if stamped:
        parts.append(f"stamped {_plural(stamped, 'close')}")
    fields, records = _total(counts, "fields_written"), _total(counts, "written")
    if dry_run:
        planned = len(getattr(report, "planned", ()) or ()) or _total(counts, "planned")
        parts.append(f"would write {_plural(planned, 'record')} (dry run: nothing written)")
    else:
        parts.append(f"wrote {_plural(fields, 'field')} on {_plural(records, 'record')}")
    failed = _total(counts, "failed")
    if failed:
        parts.append(_plural(failed, "dead letter"))
    deferred = _total(counts, "deferred")
    if deferred:
        parts.append(f"{deferred:,} deferred to save API budget")
    return ", ".join(parts)


def api_calls(report: Any) -> str:
    """`9 API calls (salesforce 6, hubspot 3)`; per-endpoint and budget keys left out."""
    per = {k: v for k, v in (report.api_calls or {}).items() if "." not in k}
    if not per:
        return "no API calls"
    detail = ", ".join(f"{k} {v:,}" for k, v in per.items())
    return f"{_plural(sum(per.values()), 'API call')} ({detail})"
