"""What `psi log` and the reports may show of private-matching runs, through the sharing rule:
a partner population we show as hidden shows no figure, and counts never come with members
(a run's record holds none)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from schema.models import Partner, PsiRun
from sync.psi.runs import Role, Status, list_runs
from sync.sharing import COUNTED, Level, share_level

_DONE = (Status.FINISHED.value, Status.CONTACTS_REQUESTED.value,
         Status.CONTACTS_RECEIVED.value)


def _shares(session: Session) -> dict[str, dict[str, Any]]:
    return {pid: share or {} for pid, share in session.execute(select(Partner.id,
                                                                      Partner.share))}


_UNITS = {"domain": ("domain", "domains"), "duns": ("DUNS number", "DUNS numbers")}


def keys_text(figures: Mapping[str, Any]) -> str:
    """Key counts in words, e.g. `284 domains, 1 DUNS number` (not `284 domain, 1 duns`);
    entries that are not key kinds (a result's `level`) are left out."""
    parts = []
    for kind, n in figures.items():
        if kind in _UNITS:
            one, many = _UNITS[kind]
            parts.append(f"{int(n):,} {one if int(n) == 1 else many}")
    return ", ".join(parts)


def _sizes(sizes: dict[str, Any] | None) -> str:
    if not sizes:
        return ""
    flat: dict[str, int] = {}
    for name, value in sizes.items():
        if isinstance(value, dict):
            for kind, n in value.items():
                flat[kind] = flat.get(kind, 0) + int(n)
        else:
            key = name.rsplit("/", 1)[-1]
            flat[key] = flat.get(key, 0) + int(value)
    return keys_text(dict(sorted(flat.items())))


def log_rows(session: Session, *, partner_id: str | None = None,
             limit: int = 50) -> list[dict[str, Any]]:
    shares = _shares(session)
    out = []
    for run in list_runs(session, partner_id=partner_id, limit=limit):
        share = shares.get(run.partner_id, {})
        result = {p: r for p, r in (run.result or {}).items()
                  if share_level(share, p) in COUNTED}
        shared: dict[str, Any] = run.populations.get("theirs") or {}
        row = run.as_dict()
        row["result"] = result or None
        row["shared_text"] = ", ".join(f"{p}={lvl}" for p, lvl in shared.items())
        row["our_keys"] = _sizes(run.sizes.get("ours"))
        row["their_keys"] = _sizes(run.sizes.get("theirs"))
        row["found_text"] = "; ".join(
            f"{p}: " + keys_text(r)
            for p, r in result.items())
        out.append(row)
    return out


def counted_populations(session: Session) -> list[tuple[str, str, int]]:
    """(partner, their population, keys in common) for populations a partner shared as
    counts only in its latest completed run with us, while that run's result is still the
    partner's list (a file import since replaced it, figures and all): what reports add as
    unnamed counts. The figure is the number of registrable domains in common (DUNS numbers
    are not added: one company matched by both would count twice)."""
    latest = (select(PsiRun.partner_id, func.max(PsiRun.id).label("id"))
              .where(PsiRun.role == Role.REQUESTER.value, PsiRun.status.in_(_DONE))
              .group_by(PsiRun.partner_id).subquery())
    shares = _shares(session)
    # sync.psi.land marks the partner's list as a run's result: "psi:" + its run id; a file
    # import marks it with the file's hash (no mark: rows put there by no import at all).
    current = {pid: fp for pid, fp in session.execute(
        select(Partner.id, Partner.source_fingerprint))}
    out = []
    for run in session.scalars(select(PsiRun).join(latest, latest.c.id == PsiRun.id)
                               .order_by(PsiRun.partner_id)):
        if current.get(run.partner_id) not in (None, f"psi:{run.run_id}"):
            continue
        for population, figures in (run.result or {}).items():
            if figures.get("level") != Level.COUNTS.value:
                continue
            if share_level(shares.get(run.partner_id), population) not in COUNTED:
                continue
            out.append((run.partner_id, population, int(figures.get("domain", 0))))
    return out
