"""Stage `deliver alerts` of the tick: after every other stage committed (sync.alerts.deliver).

A dry run sends nothing: its facts and queued events were rolled back with the rest of it.
"""

from __future__ import annotations

from sync.alerts.deliver import deliver_alerts
from sync.stages.context import TickContext


def deliver(ctx: TickContext) -> None:
    if ctx.dry_run:
        return
    # Bounded in time (STAGE_BUDGET_S): a failing or hanging receiver never holds the tick.
    ctx.report.counts.tick["alerts_sent"] += deliver_alerts(
        ctx.engine, ctx.config, run_id=ctx.run_id, connectors=ctx.connectors).sent
