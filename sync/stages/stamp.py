"""Stage `stamp`: attribution stamped once per close (sync.attribution.stamp), at the rates
in force on the close date."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectors.base import Connector
from sync.config import Config
from sync.stages.context import TickContext


def exchange_rates(config: Config, connectors: Sequence[Connector]) -> Any:
    """Dated rates the CRMs keep first, the config's static rates last (DESIGN.md 6)."""
    from sync.attribution.currency import ChainedRates, DatedRates, StaticRates

    dated = DatedRates()
    corporate = config.attribution.corporate_currency.upper()
    for connector in connectors:
        for rate in connector.exchange_rates():
            if rate.corporate is not None and rate.corporate != corporate:
                continue  # a rate to another currency (a portal's own company currency)
            dated.add(rate.currency, rate.effective_from, rate.corporate_per_unit)
    return ChainedRates((dated, StaticRates.from_config(config.attribution)))


def stamp(ctx: TickContext) -> None:
    from sync.alerts.detect import detect_facts
    from sync.attribution.currency import remember_rates
    from sync.attribution.stamp import stamp_closed

    rates = exchange_rates(ctx.config, ctx.connectors)
    # Idempotent per close (unique close key), so a crash here and a re-run stamp once.
    with ctx.transaction() as session:
        # The CRM rates, kept for every open-pipeline figure (sync.attribution.open_pipeline),
        # the alerts below included: flushed, so they read what this tick read.
        remember_rates(session, rates.providers[0], ctx.config.attribution.corporate_currency,
                       ctx.started)
        session.flush()
        stats = stamp_closed(session, ctx.config.attribution, now=ctx.started,
                             run_id=ctx.run_id, late=ctx.options.backfill, rates=rates)
        # Alert facts commit with the tick's result: a re-run never announces one twice.
        ctx.report.counts.tick["alerts_queued"] += detect_facts(
            session, ctx.config, now=ctx.started, run_id=ctx.run_id).queued
    ctx.report.counts.tick["stamped"] += stats.stamped
    ctx.report.counts.tick["stamps_superseded"] += stats.superseded
    ctx.report.counts.tick["reopened"] += stats.reopened
    if stats.stamped or stats.reopened:
        ctx.log.info("stamped", stamped=stats.stamped, superseded=stats.superseded,
                     reopened=stats.reopened, late=stats.late)
