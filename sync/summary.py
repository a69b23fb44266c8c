"""A tick's outcome in words (`pulled 900, wrote 802 fields on 473 records, 2 dead letters`),
for the sync and backfill commands and the demo. The counter dump stays for JSON output.

Built over `TickReport.counts` (sync.stages.counts.TickCounts) and `TickReport.api`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from schema.models import Account, Opportunity
from schema.owned_fields import BY_LOGICAL
from schema.records import Stream
from sync.config import Config
from sync.stages.counts import TickCounts


def _plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else many or word + 's'}"


def tick_summary(report: Any, *, dry_run: bool = False) -> str:
    """One line: what the tick pulled, matched, stamped and wrote, and what failed."""
    counts: TickCounts = report.counts
    totals = counts.totals()
    parts = [f"pulled {totals.pulled:,}"]
    if totals.changed < totals.pulled:
        # A re-read (the lookback window, the echo of our own write-back) costs calls but no
        # work: say how much of what was read was new.
        parts[-1] += f" ({totals.changed:,} changed)" if totals.changed else " (none changed)"
    if totals.deleted:
        parts[-1] += f" ({totals.deleted:,} deleted)"
    new, ended = counts.match.get("inserted", 0), counts.match.get("ended", 0)
    if new or ended:
        parts.append(f"{_plural(new, 'new overlap')}, {ended:,} ended")
    imported = counts.tick.get("partner_files_imported", 0)
    if imported:
        parts.append(f"imported {_plural(imported, 'partner file')}")
    stamped = counts.tick.get("stamped", 0)
    if stamped:
        parts.append(f"stamped {_plural(stamped, 'close')}")
    if dry_run:
        planned = len(getattr(report, "planned", ()) or ()) or totals.planned
        parts.append(f"would write {_plural(planned, 'record')} (dry run: nothing written)")
    else:
        parts.append(f"wrote {_plural(totals.fields_written, 'field')} on "
                     f"{_plural(totals.written, 'record')}")
    if totals.failed:
        parts.append(_plural(totals.failed, "dead letter"))
    deferred = totals.deferred
    if deferred:
        parts.append(f"{deferred:,} deferred to save API budget")
    return ", ".join(parts)


def api_calls(report: Any) -> str:
    """`9 API calls (salesforce 6, hubspot 3)`."""
    per = {name: use.calls for name, use in (report.api or {}).items()}
    if not per:
        return "no API calls"
    detail = ", ".join(f"{k} {v:,}" for k, v in per.items())
    return f"{_plural(sum(per.values()), 'API call')} ({detail})"


def field_api_name(config: Config, source: str, stream: Stream | str, logical: str) -> str:
    """The CRM's own name of an owned field (`Ecosystem_Partners__c`, `ecosystem_partners`),
    as configured; the logical name when the source or field is unknown."""
    stream = Stream(stream)
    owned = BY_LOGICAL.get(logical)
    if owned is None:
        return logical
    sf, hs = config.crm.salesforce, config.crm.hubspot
    if source == sf.name:
        overrides = sf.account_fields if stream is Stream.ACCOUNTS else sf.opportunity_fields
        return overrides.get(logical) or owned.salesforce
    if source == hs.name:
        overrides = hs.company_properties if stream is Stream.ACCOUNTS else hs.deal_properties
        return overrides.get(logical) or owned.hubspot
    return logical


def record_names(session: Session, records: Iterable[tuple[str, str, str]]
                 ) -> dict[tuple[str, str, str], str]:
    """(source, stream, external id) -> the record's name in the warehouse, where known."""
    wanted: dict[tuple[str, str], set[str]] = defaultdict(set)
    for source, stream, ext in records:
        wanted[(source, str(stream))].add(ext)
    out: dict[tuple[str, str, str], str] = {}
    for (source, stream), ids in wanted.items():
        model = Account if stream == Stream.ACCOUNTS.value else Opportunity
        listed = sorted(ids)
        for start in range(0, len(listed), 500):
            for ext, name in session.execute(
                select(model.external_id, model.name).where(
                    model.source == source, model.external_id.in_(listed[start:start + 500]))):
                if name:
                    out[(source, stream, ext)] = name
    return out
