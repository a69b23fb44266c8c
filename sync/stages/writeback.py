"""Stages `plan` and `push`: what each queued record should show, and writing the difference.

`plan` lines up, per connector and stream, the chunks the planner will produce (computed
lazily, in bounded memory, as `push` consumes them). `push` writes them in batches up to the
bulk-write size; a dry run collects them for printing instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connectors.base import Connector
from schema.models import Account, Opportunity
from schema.records import Stream
from sync import dirty
from sync.dirty import Kind, Queue
from sync.plan import PlannedChunk, plan_accounts, plan_opportunities
from sync.stages.context import HEARTBEAT_EVERY_S, TickContext
from sync.writeback import push as push_changes
from sync.writeback import queue_due_dead_letters

PUSH_BATCH = 10_000
_PLANNERS = {Stream.ACCOUNTS: plan_accounts, Stream.OPPORTUNITIES: plan_opportunities}
# Opportunities first: a just-closed deal's stamp is what reps and reports wait for, and it
# must not lose the API budget to account fields.
ORDER = (Stream.OPPORTUNITIES, Stream.ACCOUNTS)


@dataclass(frozen=True)
class Plan:
    connector: Connector
    stream: Stream
    chunks: Callable[[], Iterator[PlannedChunk]]

    @property
    def label(self) -> str:
        return f"{self.connector.name}/{self.stream.value}"


def plan(ctx: TickContext) -> None:
    with ctx.transaction() as session:
        queue_due_dead_letters(session, ctx.started)
    ctx.plans = [Plan(c, s, _chunks(ctx, c, s)) for c in ctx.connectors for s in ORDER]


def _chunks(ctx: TickContext, connector: Connector,
            stream: Stream) -> Callable[[], Iterator[PlannedChunk]]:
    def produce() -> Iterator[PlannedChunk]:
        with ctx.reading() as session:
            for chunk in _PLANNERS[stream](session, connector, ctx.started):
                session.rollback()  # end the read snapshot before writing
                ctx.report.counts.of(connector.name, stream).planned += len(chunk.changes)
                yield chunk

    return produce


def push(ctx: TickContext) -> None:
    for item in ctx.plans:
        if ctx.stopping():
            return
        _push_plan(ctx, item)


def _push_plan(ctx: TickContext, item: Plan) -> None:
    pending: list[PlannedChunk] = []
    ctx.progress.start("push", item.label, _queued(ctx, item))
    for chunk in item.chunks():
        if ctx.dry_run:
            ctx.report.planned.extend(chunk.changes)
            ctx.progress.advance("push", item.label, len(chunk.record_ids))
            continue
        pending.append(chunk)
        # Batch up to the bulk-write size so large write-backs can use bulk APIs.
        if sum(len(c.changes) for c in pending) >= PUSH_BATCH or ctx.stopping():
            _push_chunks(ctx, item, pending)
            pending = []
        if ctx.stopping():
            break
    if pending:
        _push_chunks(ctx, item, pending)
    ctx.progress.done("push", item.label)
    counts = ctx.report.counts.of(item.connector.name, item.stream)
    ctx.log.info("written", source=item.connector.name, stream=item.stream.value,
                 records=counts.written, failed=counts.failed)


def _queued(ctx: TickContext, item: Plan) -> int | None:
    """How many of the source's records are queued for planning: the push's total, counted
    only when progress shows totals."""
    if not ctx.progress.totals:
        return None
    model: type[Account] | type[Opportunity] = (
        Account if item.stream is Stream.ACCOUNTS else Opportunity)
    kind = Kind.ACCOUNT if item.stream is Stream.ACCOUNTS else Kind.OPPORTUNITY
    with ctx.reading() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(
            model.source == item.connector.name,
            model.id.in_(dirty.queued(Queue.PLAN, kind)))) or 0)


def _push_chunks(ctx: TickContext, item: Plan, chunks: Sequence[PlannedChunk]) -> None:
    changes = [c for chunk in chunks for c in chunk.changes]
    stats = push_changes(ctx.engine, item.connector, changes, now=ctx.started,
                         run_id=ctx.run_id)
    counts = ctx.report.counts.of(item.connector.name, item.stream)
    counts.written += stats.records_written
    counts.fields_written += stats.fields_written
    counts.failed += stats.records_failed
    counts.manual_edits += stats.manual_edits
    counts.deferred += len(stats.deferred)
    ctx.heartbeat(at_most_every_s=HEARTBEAT_EVERY_S)
    ids = [i for chunk in chunks for i in chunk.record_ids]
    with ctx.transaction() as session:
        _taken_off(session, item, ids, stats.deferred)
    ctx.progress.advance("push", item.label, len(ids))  # records planned and written (or equal)


def _taken_off(session: Session, item: Plan, ids: Sequence[int], deferred: set[str]) -> None:
    """Planned records leave the plan queue, written or found equal; those deferred for a
    reason of the moment (budget, rate limit) stay, so the next tick writes them."""
    model: type[Account] | type[Opportunity] = (
        Account if item.stream is Stream.ACCOUNTS else Opportunity)
    kind = Kind.ACCOUNT if item.stream is Stream.ACCOUNTS else Kind.OPPORTUNITY
    if deferred:
        kept = set(session.scalars(select(model.id).where(
            model.source == item.connector.name, model.external_id.in_(list(deferred)))))
        ids = [i for i in ids if i not in kept]
    dirty.clear(session, Queue.PLAN, kind, ids)
