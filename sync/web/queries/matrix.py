"""The account mapping matrix: our populations x a partner's populations, counts per cell,
and the named accounts behind a cell.

Counts are distinct accounts. Sharing (sync.sharing): the "all partners" grid counts every
overlap a partner shares at `counts` or better; a single partner's grid shows only the
populations it shares by name (what it shares as counts only is pooled with the other
counts-only data under one unnamed key); a cell lists only accounts behind it through
overlaps shared by name. Hidden overlaps count nowhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, false, func, not_, select
from sqlalchemy.orm import Session

from schema.models import Account, CrmOwner, Overlap
from sync.owners import OWNER_OF_ACCOUNT
from sync.populations import our_populations
from sync.psi.log import counted_populations
from sync.sharing import (
    COUNTED,
    NAMED,
    POOLED_KEY,
    POOLED_LABEL,
    Policies,
    account_visibility,
    shown_population_counts,
)
from sync.web.queries.common import (
    OUR_LABELS,
    POPULATIONS,
    THEIR_LABELS,
    Col,
    Paging,
    Table,
    UnknownPartner,
    View,
)

COSELL = ("open_opportunity", "customer")  # (ours, theirs): their customers x our open opps
ALL = ""


@dataclass(frozen=True)
class Scope:
    """Which overlaps a grid counts and which of them it may name."""

    key: str  # ALL, a partner id, or POOLED_KEY
    label: str
    counted: Any  # SQL predicate over Overlap
    named: Any


def scope(pol: Policies, partner: str | None) -> Scope:
    counted = pol.overlap_clause(Overlap.partner_id, Overlap.population, COUNTED)
    named = pol.overlap_clause(Overlap.partner_id, Overlap.population, NAMED)
    if not partner:
        return Scope(ALL, "All partners", counted, named)
    if partner == POOLED_KEY:
        if not pol.has_pool():
            raise UnknownPartner(partner)
        return Scope(POOLED_KEY, POOLED_LABEL, and_(counted, not_(named)), false())
    if not pol.named_populations(partner):
        raise UnknownPartner(partner)
    mine = and_(Overlap.partner_id == partner, named)
    return Scope(partner, pol.names[partner], mine, mine)


def _our_populations_of_overlapping() -> Any:
    active = select(Overlap.account_id).where(Overlap.ended_at.is_(None))
    return our_populations().where(Account.id.in_(active)).subquery("ours")


def grid(session: Session, pol: Policies, partner: str | None = None) -> View:
    """The 3 x 3 grid of one partner, the pool of counts-only data, or all partners."""
    sc = scope(pol, partner)
    ours = _our_populations_of_overlapping()
    named_id = case((sc.named, Overlap.account_id))
    found = session.execute(
        select(ours.c.population, Overlap.population,
               func.count(func.distinct(Overlap.account_id)),
               func.count(func.distinct(named_id)))
        .join(ours, ours.c.account_id == Overlap.account_id)
        .where(Overlap.ended_at.is_(None), sc.counted)
        .group_by(ours.c.population, Overlap.population)).all()
    counts = {(o, t): (int(n), int(m)) for o, t, n, m in found}
    if sc.key == ALL:
        shown = list(POPULATIONS)
    elif sc.key == POOLED_KEY:
        shown = [p for p in POPULATIONS if any(pol.counted(pid, p) and not pol.named(pid, p)
                                                for pid in pol.shares)]
    else:
        shown = pol.named_populations(sc.key)
    listable = sc.key != POOLED_KEY
    rows = []
    for o in POPULATIONS:
        row: dict[str, Any] = {"ours": o, "label": OUR_LABELS[o]}
        for t in POPULATIONS:
            n, m = counts.get((o, t), (0, 0))
            row[t] = n if t in shown else None
            row[f"_named_{t}"] = m if (t in shown and listable) else 0
        rows.append(row)
    cols = (Col("label", "Our accounts"),
            *(Col(t, THEIR_LABELS[t], numeric=True) for t in POPULATIONS))
    note = ("" if sc.key not in (ALL, POOLED_KEY) or not pol.has_pool() else
            "Includes partners sharing counts only: they are counted, never named.")
    view = View(f"Account mapping: {sc.label}",
                facts={"partner": sc.key or None, "partner_label": sc.label,
                       "populations_shown": shown, "cosell": {"ours": COSELL[0],
                                                              "theirs": COSELL[1]}},
                tables=[Table("grid", "Overlapping accounts", cols, rows, note=note)])
    if sc.key == ALL:
        view.tables.append(by_partner(session, pol, ours))
    figures = counts_without_names(session, pol, sc.key)
    if figures.rows:
        view.tables.append(figures)
    return view


PSI = "in common with our accounts, by private matching (which of ours: not shared)"
FILE = "their accounts, from their exchange file (a size: none are shared)"


def counts_without_names(session: Session, pol: Policies, key: str) -> Table:
    """What partners share as figures only: keys in common from private-matching runs
    (sync.psi.log.counted_populations) and population sizes from exchange-file manifests
    (sync.sharing.shown_population_counts), each under the partner or the pool as
    `Policies.key` decides. Never an account: there is none behind them. Not added to the
    grid, whose cells are distinct accounts of ours; these have no account of ours."""
    per: dict[tuple[str, str], dict[str, Any]] = {}

    def add(shown_key: str, what: str, population: str, n: int) -> None:
        row = per.setdefault((shown_key, what), {
            "partner_id": None if shown_key == POOLED_KEY else shown_key,
            "partner": pol.label(shown_key), "what": what,
            **{p: None for p in POPULATIONS}})
        row[population] = (row[population] or 0) + n

    for partner_id, population, n in counted_populations(session):
        shown = pol.key(partner_id, population)
        if shown is not None:
            add(shown[0], PSI, population, n)
    for c in shown_population_counts(session):
        add(c.partner_id or POOLED_KEY, FILE, c.population, c.accounts)
    rows = sorted((r for (k, _), r in per.items() if key in (ALL, k)),
                  key=lambda r: (r["partner_id"] is None, str(r["partner"]).casefold(),
                                 r["what"]))
    return Table("counts_only", "Shared as counts only (no names behind them)", (
        Col("partner", "Partner"), Col("what", "What the figure counts"),
        *(Col(p, THEIR_LABELS[p], numeric=True) for p in POPULATIONS)), rows,
        note="Figures a partner shares without naming any account: they cannot be opened "
             "and are not part of the grid above.")


def by_partner(session: Session, pol: Policies, ours: Any) -> Table:
    """Each named partner's nine cells, then the pooled counts-only data."""
    key = pol.key_expression(Overlap.partner_id, Overlap.population)
    found = session.execute(
        select(key, ours.c.population, Overlap.population,
               func.count(func.distinct(Overlap.account_id)))
        .join(ours, ours.c.account_id == Overlap.account_id)
        .where(Overlap.ended_at.is_(None),
               pol.overlap_clause(Overlap.partner_id, Overlap.population, COUNTED))
        .group_by(key, ours.c.population, Overlap.population)).all()
    per: dict[str, dict[str, Any]] = {}
    for k, o, t, n in found:
        row = per.setdefault(k, {"partner_id": None if k == POOLED_KEY else k,
                                 "partner": POOLED_LABEL if k == POOLED_KEY else pol.names[k],
                                 "_href_partner": f"/matrix?partner={k}"})
        row[f"{o}__{t}"] = int(n)
    rows = sorted(per.values(), key=lambda r: (r["partner_id"] is None,
                                               -int(r.get(f"{COSELL[0]}__{COSELL[1]}", 0)),
                                               str(r["partner"]).casefold()))
    for r in rows:
        for o in POPULATIONS:
            for t in POPULATIONS:
                r.setdefault(f"{o}__{t}", 0)
    cosell = f"{COSELL[0]}__{COSELL[1]}"
    cols = (Col("partner", "Partner", link="_href_partner"),
            Col(cosell, "Co-sell: their customers x our open opportunities", numeric=True),
            *(Col(f"{o}__{t}", f"{OUR_LABELS[o]} x {THEIR_LABELS[t].lower()}", numeric=True)
              for o in POPULATIONS for t in POPULATIONS if (o, t) != COSELL))
    return Table("partners", "By partner (most co-sell first)", cols, rows)


def cell(session: Session, pol: Policies, ours: str, theirs: str, partner: str | None,
         paging: Paging) -> View:
    """The accounts behind one cell, through overlaps shared by name, by account name."""
    sc = scope(pol, partner)
    named_here = and_(Overlap.ended_at.is_(None), Overlap.population == theirs, sc.named)
    candidates = select(Overlap.account_id).where(named_here)
    pops = our_populations().where(Account.id.in_(candidates)).subquery("ours")
    found = session.execute(
        select(Account.id, Account.source, Account.external_id, Account.name,
               Account.domain_key, Account.owner_id, CrmOwner.name)
        .join(pops, pops.c.account_id == Account.id)
        .outerjoin(CrmOwner, OWNER_OF_ACCOUNT)
        .where(pops.c.population == ours)
        .order_by(Account.name, Account.id)
        .offset(paging.offset).limit(paging.size + 1)).all()
    page, nxt = paging.cut(list(found))
    seen = account_visibility(session, [r[0] for r in page])
    rows = []
    for aid, source, ext, name, domain, owner, owner_name in page:
        vis = seen[aid]
        behind = [n.partner_name for n in vis.named if n.population == theirs
                  and (sc.key in (ALL, n.partner_id))]
        rows.append({"source": source, "external_id": ext, "name": name, "domain": domain,
                     "owner": owner_name or owner, "owner_id": owner,
                     "owner_name": owner_name, "partners_in_cell": "; ".join(behind),
                     "overlap_density": vis.overlap_count, "partners": vis.partners_field(),
                     "_href": f"/accounts/{source}/{ext}"})
    cols = (Col("name", "Account", link="_href"), Col("domain", "Domain"),
            Col("owner", "Owner"), Col("partners_in_cell", "Partners in this cell"),
            Col("overlap_density", "Partners", numeric=True),
            Col("partners", "All partners (as shared)"))
    label = f"{OUR_LABELS[ours]} x {THEIR_LABELS[theirs].lower()}"
    listable = sc.key != POOLED_KEY and theirs in (
        POPULATIONS if sc.key == ALL else pol.named_populations(sc.key))
    note = "" if listable else "Shared as counts only: the accounts behind this cell are not named."
    return View(f"{label}: {sc.label}",
                facts={"partner": sc.key or None, "partner_label": sc.label, "ours": ours,
                       "theirs": theirs, "cosell": (ours, theirs) == COSELL},
                tables=[Table("accounts", label, cols, rows if listable else [],
                              page=paging.page, next_page=nxt if listable else None,
                              note=note)])


def partner_options(pol: Policies) -> list[tuple[str, str]]:
    """(key, label) of every selection a matrix page offers."""
    out = [(ALL, "All partners"), *pol.named_partners()]
    if pol.has_pool():
        out.append((POOLED_KEY, POOLED_LABEL))
    return out
