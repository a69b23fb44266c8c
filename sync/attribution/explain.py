"""`restamp` (a new version on request, with a reason) and `explain` (the ledger, readable).

Both address an opportunity as `EXTERNAL_ID` or `SOURCE:EXTERNAL_ID`. Explain shows partners
under their sharing policy (sync.sharing): hidden partners do not appear and counts-only
partners are pooled without a name, like every other output of ecosync.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from schema.models import AttributionCredit, AttributionStamp, Opportunity, Partner
from sync import dirty
from sync.attribution.credited import credited_populations
from sync.attribution.currency import RateProvider, StaticRates
from sync.attribution.stamp import make_stamp
from sync.config import AttributionConfig
from sync.dirty import Kind, Queue
from sync.errors import UserError
from sync.sharing import COUNTED, NAMED, share_level


def find_opportunity(session: Session, ref: str) -> Opportunity:
    """The live-or-deleted opportunity `ref` names; one clear error if none or several."""
    source, sep, ext = ref.partition(":")
    query = select(Opportunity)
    query = (query.where(Opportunity.source == source, Opportunity.external_id == ext) if sep
             else query.where(Opportunity.external_id == ref))
    found = list(session.scalars(query.limit(3)))
    if not found:
        raise UserError(f"no opportunity '{ref}' in the warehouse; give its CRM id, e.g. "
                        f"006XXXXXXXXXXXX or salesforce:006XXXXXXXXXXXX")
    if len(found) > 1:
        sources = ", ".join(f"{o.source}:{o.external_id}" for o in found)
        raise UserError(f"'{ref}' names several opportunities ({sources}); "
                        f"prefix the source, e.g. {found[0].source}:{ref}")
    return found[0]


def _active(session: Session, opp_id: int) -> AttributionStamp | None:
    return session.scalars(select(AttributionStamp).where(
        AttributionStamp.opportunity_id == opp_id,
        AttributionStamp.superseded_at.is_(None))).first()


def restamp(
    session: Session, config: AttributionConfig, ref: str, reason: str, *, now: datetime,
    run_id: int | None = None, rates: RateProvider | None = None,
) -> AttributionStamp:
    """Stamp the current close again under today's overlaps history and config."""
    if not reason.strip():
        raise UserError("--reason is required: say why the stamp is being remade")
    opp = find_opportunity(session, ref)
    active = _active(session, opp.id)
    if opp.status not in ("won", "lost"):
        raise UserError(f"opportunity {opp.source}:{opp.external_id} is {opp.status}; it is "
                        "stamped when it closes")
    if active is None or opp.closed_seen_at is None:
        raise UserError(f"opportunity {opp.source}:{opp.external_id} has no stamp for its "
                        "current close yet; the next tick stamps it")
    partners = {r.id: r.name for r in session.execute(select(Partner.id, Partner.name))}
    stamp = make_stamp(session, opp, config, partners, rates or StaticRates.from_config(config),
                       now=now, close_key=active.close_key, supersedes=active, run_id=run_id,
                       late=active.stamped_late, reason=reason.strip(),
                       assumed_close_date=opp.close_date is None)
    if stamp is None:
        raise UserError("another process restamped this opportunity at the same moment; "
                        "run `ecosync attribution explain` and retry if needed")
    dirty.mark(session, Queue.PLAN, Kind.OPPORTUNITY, [opp.id])  # the next tick writes it
    return stamp


@dataclass(frozen=True)
class ShownCredit:
    partner: str  # name, or the pooled label for counts-only partners
    kind: str
    population: str | None
    amount: Decimal | None
    corporate_amount: Decimal | None


@dataclass(frozen=True)
class StampView:
    version: int
    close_key: str
    outcome: str
    close_date: str | None
    amount: Decimal | None
    currency: str | None
    corporate_amount: Decimal | None
    corporate_currency: str | None
    exchange_rate: Decimal | None
    sourcing_partner: str | None
    sourced_rule: str | None
    amount_model: str
    rule_config_version: str
    stamped_at: datetime
    stamped_late: bool
    superseded_at: datetime | None
    reason: str | None
    window: Mapping[str, Any]
    credits: tuple[ShownCredit, ...]
    overlaps: tuple[Mapping[str, Any], ...]


@dataclass
class Explanation:
    opportunity: str
    name: str | None
    status: str
    active: StampView | None
    history: list[StampView] = field(default_factory=list)  # older versions, newest first

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def text(self) -> str:
        lines = [f"opportunity {self.opportunity} ({self.name or 'unnamed'}), {self.status}"]
        if self.active is None:
            lines.append("  not stamped: it is stamped when first seen closed")
        for title, view in ([("active stamp", self.active)] if self.active else []) + [
                ("superseded", v) for v in self.history]:
            assert view is not None
            lines.extend(_view_lines(title, view))
        return "\n".join(lines)


def _view_lines(title: str, v: StampView) -> list[str]:
    out = [f"{title}: version {v.version}, {v.outcome} on {v.close_date}, "
           f"stamped {_when(v.stamped_at)}" + (" (late)" if v.stamped_late else ""),
           f"  amount {v.amount} {v.currency or ''} = {v.corporate_amount} "
           f"{v.corporate_currency} at {v.exchange_rate}"]
    if v.superseded_at:
        out.append(f"  superseded {_when(v.superseded_at)}")
    if v.reason:
        out.append(f"  reason: {v.reason}")
    out.append(f"  model {v.amount_model}, rules {v.rule_config_version}")
    out.append(f"  influence window {_when(v.window.get('start'))} .. "
               f"{_when(v.window.get('end'))}")
    out.append(f"  sourced: {v.sourcing_partner or 'none'}"
               + (f" by rule {v.sourced_rule}" if v.sourced_rule else ""))
    for c in v.credits:
        out.append(f"  {c.kind:<10} {c.partner} ({c.population or 'no overlap'}): "
                   f"{c.amount} / {c.corporate_amount}")
    for o in v.overlaps:
        out.append(f"  overlap #{o['overlap_id']} {o['partner']} ({o['population']}, by "
                   f"{o.get('method') or '?'})")
        out.append(f"    seen {_when(o['first_seen_at'])} .. "
                   f"{_when(o['ended_at']) if o['ended_at'] else 'still active'}")
    return out


def _when(value: object) -> str:
    """A moment as every table shows it: to the second, UTC (the JSON keeps ISO 8601)."""
    moment = value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(moment, datetime):
        if moment.tzinfo:
            moment = moment.astimezone(UTC)
        return f"{moment:%Y-%m-%d %H:%M:%S} UTC"
    return str(value)


POOLED = "a partner sharing counts only"


def _shown(pid: str, population: str | None,
           partners: Mapping[str, tuple[str, Mapping[str, Any]]]) -> str | None:
    """The name to show, POOLED for counts-only, None when the partner may not appear."""
    if pid not in partners or population is None:
        return None
    name, share = partners[pid]
    level = share_level(share, population)
    if level in NAMED:
        return name
    return POOLED if level in COUNTED else None


def _view(stamp: AttributionStamp, credits: list[AttributionCredit],
          partners: Mapping[str, tuple[str, Mapping[str, Any]]],
          pops: Mapping[str, str | None]) -> StampView:
    evidence = stamp.evidence or {}
    shown: list[ShownCredit] = []
    for c in sorted(credits, key=lambda c: (c.kind != "sourced", c.partner_id)):
        label = _shown(c.partner_id, pops.get(c.partner_id), partners)
        if label is not None:
            shown.append(ShownCredit(label, c.kind, pops.get(c.partner_id), c.amount,
                                     c.corporate_amount))
    overlaps = []
    for o in evidence.get("overlaps", []):
        label = _shown(o["partner_id"], o.get("population"), partners)
        if label is not None:
            overlaps.append({**{k: v for k, v in o.items() if k != "partner_name"},
                             "partner": label,
                             "partner_id": o["partner_id"] if label != POOLED else None})
    source = None
    if stamp.sourcing_partner_id:
        source = _shown(stamp.sourcing_partner_id, pops.get(stamp.sourcing_partner_id),
                        partners)
    return StampView(
        stamp.version, stamp.close_key, stamp.outcome,
        stamp.close_date.isoformat() if stamp.close_date else None, stamp.amount,
        stamp.currency, stamp.corporate_amount, stamp.corporate_currency, stamp.exchange_rate,
        source, stamp.sourced_rule if source else None, stamp.amount_model,
        stamp.rule_config_version, stamp.stamped_at, stamp.stamped_late, stamp.superseded_at,
        stamp.reason, evidence.get("window", {}), tuple(shown), tuple(overlaps))


def explain(session: Session, ref: str) -> Explanation:
    """The active stamp of an opportunity and every version before it."""
    opp = find_opportunity(session, ref)
    stamps = list(session.scalars(select(AttributionStamp).where(
        AttributionStamp.opportunity_id == opp.id).order_by(AttributionStamp.version.desc())))
    shown = _views(session, stamps)
    views = [(shown[s.id], s.superseded_at is None) for s in stamps]
    active = next((v for v, is_active in views if is_active), None)
    return Explanation(f"{opp.source}:{opp.external_id}", opp.name, opp.status, active,
                       [v for v, is_active in views if not is_active])


def active_views(session: Session, opportunity_ids: Sequence[int]) -> dict[int, StampView]:
    """opportunity id -> its active stamp as `explain` shows it (`Explanation.active`), for
    many opportunities in a fixed number of statements (the web's account page lists up to
    a page of them: one `explain` each read the ledger four times per opportunity).
    Opportunities without an active stamp are absent."""
    if not opportunity_ids:
        return {}
    active: dict[int, AttributionStamp] = {}
    for stamp in session.scalars(select(AttributionStamp).where(
            AttributionStamp.opportunity_id.in_(list(opportunity_ids)),
            AttributionStamp.superseded_at.is_(None))
            .order_by(AttributionStamp.opportunity_id, AttributionStamp.version.desc())):
        active.setdefault(stamp.opportunity_id, stamp)  # the newest, as `explain` takes it
    if not active:
        return {}
    shown = _views(session, list(active.values()))
    return {opp_id: shown[s.id] for opp_id, s in active.items()}


def _views(session: Session, stamps: Sequence[AttributionStamp]) -> dict[int, StampView]:
    """stamp id -> the stamp as `explain` shows it, in three reads however many stamps: their
    credits, the partners' names and policies, the populations credited."""
    if not stamps:
        return {}
    credits: dict[int, list[AttributionCredit]] = {}
    for c in session.scalars(select(AttributionCredit).where(
            AttributionCredit.stamp_id.in_([s.id for s in stamps]))):
        credits.setdefault(c.stamp_id, []).append(c)
    partners = {r.id: (r.name, r.share or {}) for r in
                session.execute(select(Partner.id, Partner.name, Partner.share))}
    populations = credited_populations(session, stamps)
    return {s.id: _view(s, credits.get(s.id, []), partners, populations[s.id])
            for s in stamps}
