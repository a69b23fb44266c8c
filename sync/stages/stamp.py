"""Stage `stamp`: attribution stamped once per close (sync.attribution.stamp), at the rates
in force on the close date."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from connectors.base import Connector
from sync.config import Config
from sync.stages.context import TickContext


def exchange_rates(config: Config, connectors: Sequence[Connector]) -> Any:
    """Dated rates the CRMs keep first, the config's static rates last (DESIGN.md 6)."""
    from sync.attribution.currency import ChainedRates, StaticRates

    return ChainedRates((_CrmRates(config, connectors),
                         StaticRates.from_config(config.attribution)))


class _CrmRates:
    """The CRMs' dated rates, read on the first conversion: a tick with nothing to convert
    (an idle one) asks the CRMs for none."""

    name = "dated"

    def __init__(self, config: Config, connectors: Sequence[Connector]) -> None:
        self._config, self._connectors = config, connectors
        self._dated: Any = None

    def rate(self, currency: str, day: date) -> Decimal | None:
        if self._dated is None:
            self._dated = self._read()
        found: Decimal | None = self._dated.rate(currency, day)
        return found

    def _read(self) -> Any:
        from sync.attribution.currency import DatedRates

        dated = DatedRates()
        corporate = self._config.attribution.corporate_currency.upper()
        for connector in self._connectors:
            for rate in connector.exchange_rates():
                if rate.corporate is not None and rate.corporate != corporate:
                    continue  # a rate to another currency (a portal's own company currency)
                dated.add(rate.currency, rate.effective_from, rate.corporate_per_unit)
        return dated


def stamp(ctx: TickContext) -> None:
    from sync.alerts.detect import detect_facts
    from sync.attribution.currency import remember_rates
    from sync.attribution.stamp import stamp_closed

    rates = exchange_rates(ctx.config, ctx.connectors)
    # Idempotent per close (unique close key), so a crash here and a re-run stamp once.
    with ctx.transaction() as session:
        # The CRM rates, kept for reports (open pipeline in the corporate currency).
        remember_rates(session, rates.providers[0], ctx.config.attribution.corporate_currency,
                       ctx.started)
        stats = stamp_closed(session, ctx.config.attribution, now=ctx.started,
                             run_id=ctx.run_id, late=ctx.options.backfill, rates=rates)
        # Alert facts commit with the tick's result: a re-run never announces one twice.
        ctx.report.counts["alerts_queued"] += detect_facts(
            session, ctx.config, now=ctx.started, run_id=ctx.run_id, rates=rates).queued
    ctx.report.counts["stamped"] += stats.stamped
    ctx.report.counts["stamps_superseded"] += stats.superseded
    ctx.report.counts["reopened"] += stats.reopened
    if stats.stamped or stats.reopened:
        ctx.log.info("stamped", stamped=stats.stamped, superseded=stats.superseded,
                     reopened=stats.reopened, late=stats.late)
