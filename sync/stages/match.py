"""Stage `match`: re-match what changed and reconcile the overlaps (sync.matching.engine).

Matching queues the accounts whose overlaps changed, and their open opportunities, for the
plan stage.
"""

from __future__ import annotations

from sync.stages.context import TickContext


def match(ctx: TickContext) -> None:
    from sync.matching.engine import rematch

    with ctx.transaction() as session:
        stats = rematch(session, ctx.config.matching, now=ctx.started)
    for key, value in vars(stats).items():
        if isinstance(value, int) and not isinstance(value, bool):
            ctx.report.counts.match[key] = ctx.report.counts.match.get(key, 0) + value
    ctx.log.info("matched", **{k: v for k, v in vars(stats).items()
                               if isinstance(v, int | float) and not isinstance(v, bool)})
