"""One account: partners present (as shared), their contacts, the overlap history, our
opportunities with their stamps and evidence, and why each partner matched.

The same facts as `ecosync match explain` and `ecosync attribution explain`, under sharing:
the stamps come from sync.attribution.explain (hidden partners absent, counts-only pooled);
match explanations are cut by `Policies.explanation_level`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, false, select
from sqlalchemy.orm import Session

from schema.models import Account, CrmOwner, Opportunity, Overlap
from sync.attribution import explain as attribution_explain
from sync.attribution.open_pipeline import OpenPipeline
from sync.config import MatchingConfig
from sync.matching import explain as match_explain
from sync.populations import our_populations
from sync.sharing import Level, Policies, account_visibility
from sync.web.queries.common import Col, Paging, Table, View, money


class UnknownAccount(LookupError):
    pass


def account_view(session: Session, pol: Policies, money_: OpenPipeline, matching: MatchingConfig,
                 source: str, external_id: str, paging: Paging) -> View:
    acc = session.scalar(select(Account).where(Account.source == source,
                                               Account.external_id == external_id))
    if acc is None:
        raise UnknownAccount(f"no account {source}/{external_id} in the warehouse")
    vis = account_visibility(session, [acc.id], policy=pol)[acc.id]
    owner = (session.get(CrmOwner, (acc.source, acc.owner_id)) if acc.owner_id else None)
    population = session.scalar(
        select(our_populations().where(Account.id == acc.id).subquery().c.population))
    pooled = vis.overlap_count - len(vis.named)
    partners = Table("partners", "Partners present", (
        Col("partner", "Partner", link="_href"), Col("population", "Their population", words=True)),
        [{"partner_id": n.partner_id, "partner": n.partner_name, "population": n.population,
          "_href": f"/partners/{n.partner_id}"} for n in vis.named],
        note=(f"Plus {pooled} {'partner' if pooled == 1 else 'partners'} sharing counts only: "
              "counted, never named." if pooled else ""))
    contacts = Table("contacts", "Who to call at the partner", (
        Col("partner", "Partner"), Col("owner_name", "Account owner"),
        Col("owner_email", "E-mail")),
        [{"partner": c.partner_name, "owner_name": c.owner_name,
          "owner_email": c.owner_email} for c in vis.contacts])
    opps, ids, nxt = _opportunities(session, money_, acc, paging)
    active = attribution_explain.active_views(session, ids)
    stamps = [_stamp_rows(o["external_id"], active.get(i)) for o, i in zip(opps, ids,
                                                                           strict=True)]
    view = View(acc.name or f"{source}/{external_id}", facts={
        "source": source, "external_id": external_id, "name": acc.name,
        "domain": acc.domain_key, "website": acc.website, "owner_id": acc.owner_id,
        "country": acc.country, "owner_name": owner.name if owner else None,
        "owner_email": owner.email if owner else None,
        "our_population": population, "overlap_density": vis.overlap_count,
        "overlap_changed_at": vis.changed_at, "deleted": acc.is_deleted,
        "currency": money_.corporate}, tables=[
        partners, contacts, _history(session, pol, acc.id),
        Table("opportunities", "Opportunities", OPP_COLUMNS, opps, page=paging.page,
              next_page=nxt),
        Table("credits", "Attribution stamps and their evidence", CREDIT_COLUMNS,
              [r for rows in stamps for r in rows]),
        _matches(session, pol, matching, acc)])
    return view


def _history(session: Session, pol: Policies, account_id: int) -> Table:
    found = session.execute(
        select(Overlap.partner_id, Overlap.population, Overlap.method, Overlap.first_seen_at,
               Overlap.last_seen_at, Overlap.ended_at)
        .where(Overlap.account_id == account_id)
        .order_by(Overlap.first_seen_at.desc(), Overlap.id.desc()).limit(200)).all()
    rows = [{"partner": pol.names[pid], "population": pop, "method": method,
             "first_seen_at": first, "last_seen_at": last, "ended_at": ended,
             "state": "active" if ended is None else "ended"}
            for pid, pop, method, first, last, ended in found if pol.named(pid, pop)]
    return Table("history", "Overlap history", (
        Col("partner", "Partner"), Col("population", "Population", words=True),
        Col("method", "Matched by"),
        Col("first_seen_at", "First seen"), Col("ended_at", "Ended"), Col("state", "State")),
        rows)


OPP_COLUMNS = (
    Col("name", "Opportunity"), Col("stage", "Stage"), Col("status", "Status"),
    Col("amount", "Amount", numeric=True), Col("currency", "Currency"),
    Col("corporate_amount", "Corporate amount", numeric=True), Col("close_date", "Close date"),
    Col("external_id", "Id"))


def _opportunities(session: Session, money_: OpenPipeline, acc: Account, paging: Paging,
                   ) -> tuple[list[dict[str, Any]], list[int], int | None]:
    """The page's rows, their opportunity ids (for their stamps) and the next page."""
    converted = money_.corporate_amount(Opportunity.amount, Opportunity.currency)
    found = session.execute(
        select(Opportunity.source, Opportunity.external_id, Opportunity.name,
               Opportunity.stage, Opportunity.status, Opportunity.amount,
               Opportunity.currency, converted, Opportunity.close_date, Opportunity.id)
        .where(and_(Opportunity.source == acc.source,
                    Opportunity.account_external_id == acc.external_id),
               Opportunity.is_deleted == false())
        .order_by(Opportunity.status != "open", Opportunity.close_date.desc(),
                  Opportunity.id.desc())
        .offset(paging.offset).limit(paging.size + 1)).all()
    page, nxt = paging.cut(list(found))
    return [{"source": r[0], "external_id": r[1], "name": r[2], "stage": r[3], "status": r[4],
             "amount": r[5], "currency": r[6], "corporate_amount": money(r[7]),
             "close_date": r[8]} for r in page], [r[9] for r in page], nxt


CREDIT_COLUMNS = (
    Col("opportunity", "Opportunity"), Col("version", "Stamp version", numeric=True),
    Col("outcome", "Outcome"), Col("partner", "Partner"), Col("kind", "Credit"),
    Col("population", "Population at close", words=True),
    Col("corporate_amount", "Credited (corporate)", numeric=True),
    Col("rule", "Why"), Col("stamped_at", "Stamped"))


def _stamp_rows(external_id: str,
                stamp: attribution_explain.StampView | None) -> list[dict[str, Any]]:
    """The active stamp of an opportunity as `attribution explain` shows it."""
    if stamp is None:
        return []
    window = f"overlap active {stamp.window.get('start')} .. {stamp.window.get('end')}"
    rows = []
    for c in stamp.credits:
        why = (f"sourced by rule {stamp.sourced_rule}" if c.kind == "sourced" and
               stamp.sourced_rule else window)
        rows.append({"opportunity": external_id, "version": stamp.version,
                     "outcome": stamp.outcome, "partner": c.partner, "kind": c.kind,
                     "population": c.population, "corporate_amount": c.corporate_amount,
                     "rule": why, "stamped_at": stamp.stamped_at})
    if not rows:
        rows.append({"opportunity": external_id, "version": stamp.version,
                     "outcome": stamp.outcome, "partner": None, "kind": "none",
                     "rule": "no partner shown was active in the influence window",
                     "stamped_at": stamp.stamped_at})
    return rows


def _matches(session: Session, pol: Policies, matching: MatchingConfig,
             acc: Account) -> Table:
    rows = []
    for e in match_explain.explain(session, acc.source, acc.external_id, matching,
                                   account=acc):
        level = pol.explanation_level(e.partner_id, e.matched, e.population)
        if level is Level.HIDDEN:
            continue
        full = level is Level.FULL
        rows.append({
            "partner": e.partner_name, "matched": e.matched if full else False,
            "method": e.method if full else None, "key": e.key if full else None,
            "score": e.score if full else None,
            "population": e.population if full else None,
            "override": e.override if full else None,
            "reason": e.reason if full else "no match among the rows it shares by name",
            "since": e.since if full else None})
    return Table("matches", "Why did this match?", (
        Col("partner", "Partner"), Col("matched", "Matched"), Col("method", "By"),
        Col("key", "On"), Col("score", "Score", numeric=True),
        Col("population", "Population", words=True),
        Col("reason", "Reason"), Col("override", "Override"), Col("since", "Since")), rows)
