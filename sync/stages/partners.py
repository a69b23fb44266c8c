"""Stage `refresh partners`: the partners of the config, and the partner files they watch.

A partner whose sharing policy changed gets every account it overlaps re-rendered. A watched
CSV file is re-imported when it changed (all or nothing: a bad file keeps the previous
snapshot, the tick goes on and reports it).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from schema.models import Overlap, Partner
from sync import dirty
from sync.attribution.credited import crediting, replanned_on_overlap_change
from sync.config import Config
from sync.dirty import Kind, Queue
from sync.stages.context import TickContext


def refresh_partners(ctx: TickContext) -> None:
    from sync.partners.registry import sync_partners_from_config

    with ctx.transaction() as session:
        before = {p.id: p.share for p in session.scalars(select(Partner))}
        sync_partners_from_config(session, ctx.config, now=ctx.started)
        session.flush()
        after = {p.id: p.share for p in session.scalars(select(Partner))}
        changed = [pid for pid, share in after.items() if pid in before and before[pid] != share]
        if changed:
            _mark_partner_accounts_dirty(session, changed)
    import_watched_partner_files(ctx)


def partner_file_path(config: Config, path: str) -> Path:
    """Relative partner paths are relative to the config file, not the working directory."""
    candidate = Path(path)
    if candidate.is_absolute() or not config.source_path or config.source_path.startswith("<"):
        return candidate
    return Path(config.source_path).parent / candidate


def import_watched_partner_files(ctx: TickContext) -> None:
    from sync.exchange.importer import import_partner_file
    from sync.matching.keys import generic_domains
    from sync.stages.partner_files import WatchStatus, refresh_watched_file

    generic = generic_domains(ctx.config.matching.generic_domains)
    for partner in ctx.config.partners:
        if partner.source != "csv" or not partner.path:
            continue
        path = partner_file_path(ctx.config, partner.path)
        outcome = refresh_watched_file(ctx.transaction, partner, path,
                                       importer=import_partner_file, generic=generic,
                                       now=ctx.started)
        # A refused file is said once per version of it (the previous snapshot stays and
        # the daemon goes on); the same bad bytes on later ticks pass quietly.
        if outcome.reportable:
            ctx.report.errors.append(f"partner {partner.id}: {outcome.message}")
            ctx.report.counts.tick["partner_files_rejected"] += 1
            ctx.log.warning("partner file rejected", partner=partner.id, error=outcome.message)
        elif outcome.status is WatchStatus.IMPORTED:
            ctx.report.counts.tick["partner_files_imported"] += 1
            ctx.log.info("partner file imported", partner=partner.id, summary=outcome.message)
            if outcome.skipped_rows:
                ctx.log.warning("partner file rows skipped", partner=partner.id,
                                rows=outcome.skipped_rows, problems=outcome.skipped)


def _mark_partner_accounts_dirty(session: Session, partner_ids: Sequence[str]) -> None:
    """A partner's sharing policy changed: every account it overlaps must be re-rendered,
    with the opportunities that show it."""
    touched = select(Overlap.account_id).where(Overlap.partner_id.in_(partner_ids))
    dirty.plan_accounts_and_opportunities(session, touched, replanned_on_overlap_change())
    # Stamped opportunities show their credited partners under the current policy.
    dirty.mark(session, Queue.PLAN, Kind.OPPORTUNITY, crediting(partner_ids))
