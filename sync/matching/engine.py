"""The matching engine: computes the desired overlap set and reconciles the overlaps table.

Set-based inside the warehouse (DESIGN.md 3, 4): the DUNS and domain candidates are each ONE
`INSERT … SELECT` join, the same statement on SQLite and PostgreSQL; exact names are two such
joins (each driven by the side without a domain; only the phrasing of "no domain" differs per
engine, for the planners' sake: `fuzzy.lacks`); fuzzy candidates come from
`sync.matching.fuzzy`; overrides are applied; a window function keeps the strongest row per
(account, partner) in a work table; and a few statements reconcile that set with the active
overlaps: still present (same row, `last_seen_at` moves), new (inserted with first_seen_at),
vanished (`ended_at` set). Nothing is deleted: history is kept. Accounts whose overlaps
changed are queued for planning (sync.dirty), with the opportunities that show them.

Incremental by default: only accounts queued for matching, plus the accounts that match (or
matched) partner accounts queued for matching, are recomputed. `full=True` recomputes all.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    FromClause,
    Select,
    Table,
    and_,
    case,
    exists,
    false,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    text,
    true,
    union,
    update,
)
from sqlalchemy.orm import Session

from schema.models import (
    Account,
    DirtyRecord,
    MatchOverride,
    Opportunity,
    Overlap,
    PartnerAccount,
)
from schema.records import POPULATION_RANK
from sync import dirty
from sync.attribution.credited import replanned_on_overlap_change
from sync.bulk import cyclic_gc_paused
from sync.config import MatchingConfig
from sync.dirty import Kind, Queue
from sync.matching import fuzzy, postgres
from sync.matching.rules import METHOD_BY_RANK, METHOD_RANK, Method
from sync.matching.stats import MatchStats
from sync.matching.worktables import (
    ACTIVE,
    BEST,
    BLOCKED,
    CANDIDATES,
    CHANGED,
    DIRTY_ACCOUNTS,
    DIRTY_PARTNER_ACCOUNTS,
    SCOPE,
    SCOPED,
    TOUCHED,
    table_of,
    work_tables,
)

A = table_of(Account)
PA = table_of(PartnerAccount)
OV = table_of(Overlap)
MO = table_of(MatchOverride)
OPP = table_of(Opportunity)


def _pop_rank(column: Any, *, else_: Any = None) -> Any:
    default = max(POPULATION_RANK.values()) if else_ is None else else_
    return case({str(p): r for p, r in POPULATION_RANK.items()}, value=column, else_=default)


def _duns_compatible(a: FromClause, pa: FromClause) -> Any:
    return or_(a.c.duns.is_(None), pa.c.duns.is_(None), a.c.duns == pa.c.duns)


def _count(conn: Connection, table: FromClause) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _overlap_accounts(partner_accounts: FromClause) -> Select[Any]:
    """The accounts with an active overlap on one of `partner_accounts` (ids, `record_id`)."""
    return (select(OV.c.account_id)
            .join(partner_accounts, partner_accounts.c.record_id == OV.c.partner_account_id)
            .where(OV.c.ended_at.is_(None)).distinct())


class _Run:
    def __init__(self, conn: Connection, config: MatchingConfig, now: datetime, full: bool):
        self.conn, self.config, self.now, self.full = conn, config, now, full
        self.stats = MatchStats(full=full)
        self._clock = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.stats.seconds[stage] = self.stats.seconds.get(stage, 0.0) + now - self._clock
        self._clock = now

    @property
    def accounts(self) -> Table:
        """The accounts this run recomputes: all of them, or the scope's rows read once
        (SCOPED, the same column names)."""
        return A if self.full else SCOPED

    def analyze(self, *tables: Table) -> None:
        """Give the planner the work tables' sizes (temporary tables have no statistics, and
        PostgreSQL's autovacuum never analyzes them): in an incremental run the small scope
        must drive the joins into the large tables, not the other way round, and in a full run
        PostgreSQL must know the work tables are large (hash joins, not nested loops)."""
        if self.full and self.conn.dialect.name == "sqlite":
            return  # SQLite reads whole tables to analyze; its default plans suit full runs
        for table in tables:
            self.conn.execute(text(f"ANALYZE {postgres.quoted(self.conn, table)}"))

    def execute(self, stmt: Any, *args: Any) -> int:
        return int(self.conn.execute(stmt, *args).rowcount or 0)

    # -- stage 1: what is dirty, and which accounts that touches ---------------------------
    def snapshot_dirty(self) -> None:
        """What is queued for matching now (sync.dirty), taken off the queue in the same
        statement: this run matches them (a rolled-back run puts them back); marks raised
        during the run stay."""
        c = self.conn
        if self.full:
            # A full run recomputes every account: which ones were queued changes nothing,
            # and of the queued partner accounts only the accounts whose active overlaps
            # they carry matter (`reconcile`: their fields may change in place). So the
            # queue is taken and counted without copying a million ids into work tables.
            self.stats.dirty_accounts = dirty.clear_all(c, Queue.MATCH, Kind.ACCOUNT)
            self.stats.dirty_partner_accounts = dirty.take_into(
                c, Queue.MATCH, Kind.PARTNER_ACCOUNT, TOUCHED, _overlap_accounts)
        else:
            self.stats.dirty_accounts = dirty.take(c, Queue.MATCH, Kind.ACCOUNT,
                                                   DIRTY_ACCOUNTS)
            self.stats.dirty_partner_accounts = dirty.take(
                c, Queue.MATCH, Kind.PARTNER_ACCOUNT, DIRTY_PARTNER_ACCOUNTS)
        self.analyze(DIRTY_ACCOUNTS, DIRTY_PARTNER_ACCOUNTS)
        self.lap("dirty")

    def build_scope(self) -> None:
        dpa = PA.join(DIRTY_PARTNER_ACCOUNTS, DIRTY_PARTNER_ACCOUNTS.c.id == PA.c.id)
        via_pa = [
            select(A.c.id).select_from(dpa.join(A, A.c.domain_key == PA.c.domain_key)),
            select(A.c.id).select_from(dpa.join(A, A.c.duns == PA.c.duns)),
            select(A.c.id).select_from(dpa.join(A, A.c.name_key == PA.c.name_key)),
        ]
        # Overlaps built on a dirty partner account: its keys or population changed, so the
        # account may no longer match it. (A deleted partner account's overlaps are flagged by
        # the import, which queues their accounts for matching: see sync.partners.csv_import.)
        via_overlaps = (
            select(OV.c.account_id)
            .join(DIRTY_PARTNER_ACCOUNTS, DIRTY_PARTNER_ACCOUNTS.c.id == OV.c.partner_account_id)
            .where(OV.c.ended_at.is_(None))
        )
        sources = [select(DIRTY_ACCOUNTS.c.id)]
        if self.stats.dirty_partner_accounts:  # the overlaps join reads every active overlap
            sources += [*via_pa, via_overlaps]
        self.conn.execute(insert(SCOPE).from_select(["account_id"], union(*sources)))
        if self.config.fuzzy and self.stats.dirty_partner_accounts:
            near = fuzzy.accounts_near_dirty_partner_accounts(self.conn, self.config.name_threshold)
            known = set(self.conn.execute(select(SCOPE.c.account_id)).scalars())
            extra = [{"account_id": i} for i in sorted(near - known)]
            if extra:
                self.conn.execute(insert(SCOPE), extra)
        self.stats.scope_accounts = _count(self.conn, SCOPE)
        self.analyze(SCOPE)  # before it drives the read below: SQLite would scan accounts
        self.conn.execute(insert(SCOPED).from_select(
            [c.name for c in SCOPED.c],
            select(*(A.c[c.name] for c in SCOPED.c))
            .join(SCOPE, SCOPE.c.account_id == A.c.id).where(A.c.is_deleted == false())))
        self.analyze(SCOPED)
        self.lap("scope")

    # -- stage 2: candidates ---------------------------------------------------------------
    def _insert_candidates(self, method: Method, on: Any, *where: Any) -> None:
        acc = self.accounts
        sel = (
            select(acc.c.id, PA.c.partner_id, PA.c.id, literal(METHOD_RANK[method]),
                   _pop_rank(PA.c.population), null())
            .select_from(acc.join(PA, on))
            .where(acc.c.is_deleted == false(), *where)
        )
        self.conn.execute(insert(CANDIDATES).from_select(
            ["account_id", "partner_id", "partner_account_id", "method_rank", "pop_rank",
             "score"], sel))

    def candidates(self) -> None:
        acc = self.accounts
        compatible = _duns_compatible(acc, PA)
        self._insert_candidates(Method.DUNS, PA.c.duns == acc.c.duns)
        self.lap("duns")
        self._insert_candidates(Method.DOMAIN, PA.c.domain_key == acc.c.domain_key, compatible)
        self.lap("domain")
        # Two joins, each driven by the side without a domain (the minority), rather than one
        # join of every equal name filtered afterwards.
        # "No domain" is phrased per engine and mode so the right side drives: fuzzy.lacks.
        same_name = PA.c.name_key == acc.c.name_key
        a_lacks = fuzzy.lacks(self.conn, acc.c.domain_key, full=self.full)
        pa_lacks = fuzzy.lacks(self.conn, PA.c.domain_key, full=self.full)
        self._insert_candidates(Method.NAME, same_name, compatible, a_lacks)
        self._insert_candidates(Method.NAME, same_name, compatible,
                                acc.c.domain_key.is_not(None), pa_lacks)
        self.lap("name")
        if self.config.fuzzy:
            pairs = fuzzy.fuzzy_pairs(self.conn, self.accounts, self.config.name_threshold,
                                      full=self.full)
            self.stats.fuzzy_pairs = len(pairs)
            self.stats.fuzzy_scoring = fuzzy.SCORING
            rank = METHOD_RANK[Method.FUZZY]
            for start in range(0, len(pairs), 5_000):
                self.conn.execute(insert(CANDIDATES), [
                    {"account_id": a, "partner_id": p, "partner_account_id": pa,
                     "method_rank": rank, "pop_rank": pop, "score": score}
                    for a, p, pa, pop, score in pairs[start:start + 5_000]])
            self.lap("fuzzy")
        self.apply_overrides()
        self.stats.candidates = _count(self.conn, CANDIDATES)
        self.lap("overrides")

    def apply_overrides(self) -> None:
        """Blocks remove candidates, pins add one: overrides win over every rule."""
        c = self.conn
        if not c.execute(select(exists().where(MO.c.revoked_at.is_(None)))).scalar():
            return  # most warehouses have none: spare the joins into the accounts
        acc = self.accounts
        active = and_(MO.c.revoked_at.is_(None), acc.c.is_deleted == false())
        on_account = and_(acc.c.source == MO.c.source,
                          acc.c.external_id == MO.c.account_external_id)
        overrides = acc.join(MO, on_account)
        c.execute(insert(BLOCKED).from_select(
            ["account_id", "partner_id", "partner_account_id"],
            union(
                select(acc.c.id, MO.c.partner_id, null()).select_from(overrides)
                .where(active, MO.c.action == "block", MO.c.partner_row_key.is_(None)),
                select(acc.c.id, MO.c.partner_id, PA.c.id)
                .select_from(overrides.join(PA, and_(PA.c.partner_id == MO.c.partner_id,
                                                     PA.c.row_key == MO.c.partner_row_key)))
                .where(active, MO.c.action == "block"),
            )))
        if _count(c, BLOCKED):
            c.execute(CANDIDATES.delete().where(exists().where(
                BLOCKED.c.account_id == CANDIDATES.c.account_id,
                BLOCKED.c.partner_id == CANDIDATES.c.partner_id,
                or_(BLOCKED.c.partner_account_id.is_(None),
                    BLOCKED.c.partner_account_id == CANDIDATES.c.partner_account_id))))
        pinned_row = and_(PA.c.partner_id == MO.c.partner_id, PA.c.row_key == MO.c.partner_row_key)
        c.execute(insert(CANDIDATES).from_select(
            ["account_id", "partner_id", "partner_account_id", "method_rank", "pop_rank",
             "score"],
            select(acc.c.id, MO.c.partner_id, PA.c.id, literal(METHOD_RANK[Method.PIN]),
                   func.coalesce(_pop_rank(MO.c.population, else_=null()),
                                 _pop_rank(PA.c.population)), null())
            .select_from(overrides.outerjoin(PA, pinned_row))
            .where(active, MO.c.action == "pin")))

    # -- stage 3: the strongest row per (account, partner) ---------------------------------
    def best(self) -> None:
        c = CANDIDATES
        ranked = select(
            c,
            func.row_number().over(
                partition_by=(c.c.account_id, c.c.partner_id),
                order_by=(c.c.pop_rank, c.c.method_rank, c.c.score.desc(),
                          c.c.partner_account_id),
            ).label("rn"),
        ).subquery("ranked")
        method = case({r: str(m) for r, m in METHOD_BY_RANK.items()}, value=ranked.c.method_rank)
        population = case({r: str(p) for p, r in POPULATION_RANK.items()},
                          value=ranked.c.pop_rank)
        self.conn.execute(insert(BEST).from_select(
            ["account_id", "partner_id", "partner_account_id", "method", "population", "score"],
            select(ranked.c.account_id, ranked.c.partner_id, ranked.c.partner_account_id,
                   method, population, ranked.c.score).where(ranked.c.rn == 1)))
        self.stats.overlaps = _count(self.conn, BEST)
        self.analyze(BEST)
        if not self.full:
            # The scope's active overlaps, read once: what the statements below and
            # `reconcile` compare with BEST (a full run compares with the whole table).
            self.conn.execute(insert(ACTIVE).from_select(
                [c.name for c in ACTIVE.c],
                select(*(OV.c[c.name] for c in ACTIVE.c))
                .join(SCOPE, SCOPE.c.account_id == OV.c.account_id)
                .where(OV.c.ended_at.is_(None))))
            self.analyze(ACTIVE)
        # Which desired overlaps are already active, decided once, before overlaps is
        # written: an INSERT into overlaps guarded by NOT EXISTS on overlaps itself can
        # degrade on PostgreSQL into rescanning the table it is growing (quadratic).
        self.conn.execute(update(BEST).where(exists().where(self._active_pair(BEST)))
                          .values(present=true()))
        self.lap("best")

    # -- stage 4: reconcile with the active overlaps ---------------------------------------
    @property
    def active(self) -> FromClause:
        """The active overlaps this run reconciles: the overlaps table (a full run; with
        `_live`), or the scope's read into ACTIVE (the same column names)."""
        return OV if self.full else ACTIVE

    def _live(self) -> list[Any]:
        return [OV.c.ended_at.is_(None)] if self.full else []

    def _active_pair(self, other: FromClause) -> Any:
        """The active overlap of `other`'s (account, partner)."""
        act = self.active
        return and_(act.c.account_id == other.c.account_id,
                    act.c.partner_id == other.c.partner_id, *self._live())

    def reconcile(self) -> None:
        act, same_pair = self.active, self._active_pair(BEST)
        new = select(BEST.c.account_id).where(BEST.c.present == false())
        vanished = select(act.c.account_id).where(*self._live(), ~exists().where(same_pair))
        altered = select(act.c.account_id).where(same_pair, or_(
            act.c.population != BEST.c.population,
            act.c.partner_account_id.is_distinct_from(BEST.c.partner_account_id)))
        # The partner account behind an overlap changed in place (e.g. its owner): the
        # contacts field of the account may change although the overlap did not. (An
        # incremental scope holds every account with an active overlap on a queued partner
        # account: `build_scope`.)
        dpa = DIRTY_PARTNER_ACCOUNTS
        touched = (select(TOUCHED.c.account_id) if self.full
                   else select(act.c.account_id).join(dpa, dpa.c.id == act.c.partner_account_id))
        sources = [new, vanished, altered]
        if self.stats.dirty_partner_accounts:
            sources.append(touched)
        self.conn.execute(insert(CHANGED).from_select(["account_id"], union(*sources)))
        self.stats.changed_accounts = _count(self.conn, CHANGED)
        self.lap("changes")

        on_pair = and_(OV.c.account_id == BEST.c.account_id, OV.c.partner_id == BEST.c.partner_id,
                       OV.c.ended_at.is_(None))
        still_present = self.execute(update(OV).where(on_pair, BEST.c.present == true()).values(
            last_seen_at=self.now, method=BEST.c.method, population=BEST.c.population,
            score=BEST.c.score, partner_account_id=BEST.c.partner_account_id))
        self.lap("update")
        gone = ~exists().where(BEST.c.account_id == act.c.account_id,
                               BEST.c.partner_id == act.c.partner_id)
        ending = (update(OV).where(OV.c.ended_at.is_(None), gone) if self.full
                  else update(OV).where(OV.c.id.in_(select(ACTIVE.c.id).where(gone))))
        self.stats.ended = self.execute(ending.values(ended_at=self.now))
        self.lap("end")
        # INSERT … SELECT has no reliable rowcount on every driver; BEST holds one row per
        # (account, partner), each either still present (updated above) or new.
        self.stats.still_present = still_present
        self.stats.inserted = self.stats.overlaps - still_present
        new_rows = insert(OV).from_select(
            ["account_id", "partner_id", "partner_account_id", "method", "score", "population",
             "first_seen_at", "last_seen_at"],
            select(BEST.c.account_id, BEST.c.partner_id, BEST.c.partner_account_id,
                   BEST.c.method, BEST.c.score, BEST.c.population,
                   literal(self.now, OV.c.first_seen_at.type),
                   literal(self.now, OV.c.last_seen_at.type))
            .where(BEST.c.present == false()))
        postgres.insert_checking_keys_once(self.conn, OV, self.stats.inserted, new_rows)
        # A first or large run changes overlaps' size by orders of magnitude before
        # autovacuum notices; the next incremental run would be planned for an empty table.
        postgres.analyze_if_large(self.conn, OV, self.stats.inserted + self.stats.ended)
        self.lap("insert")

    # -- stage 5: the queue ------------------------------------------------------------------
    def flags(self) -> None:
        """Accounts whose overlaps changed, and the opportunities showing them, are queued
        for planning (what this run matched left the match queue at its start). Queue rows
        only: no account row is rewritten."""
        dirty.plan_accounts_and_opportunities(
            self.conn, select(CHANGED.c.account_id), replanned_on_overlap_change())
        # A large run's inserts and deletes leave PostgreSQL's statistics of the queue far
        # from its size until autovacuum gets round to it.
        postgres.analyze_if_large(self.conn, table_of(DirtyRecord), self.stats.dirty_accounts
                               + self.stats.dirty_partner_accounts + self.stats.changed_accounts)
        self.lap("flags")


def rematch(bind: Session | Connection, config: MatchingConfig, *, now: datetime,
            full: bool = False) -> MatchStats:
    """Re-match dirty accounts and partner accounts (all with `full`) and reconcile overlaps.

    Runs inside the caller's transaction; commit it to keep the result. `now` stamps
    first_seen_at / last_seen_at / ended_at (UTC-aware).
    """
    conn = bind.connection() if isinstance(bind, Session) else bind
    run = _Run(conn, config, now, full)
    with cyclic_gc_paused(), work_tables(conn):
        run.lap("setup")
        run.snapshot_dirty()
        if not full:
            if not run.stats.dirty_accounts and not run.stats.dirty_partner_accounts:
                run.stats.scope_accounts = 0
                return run.stats
            postgres.prefer_index_probes(conn)
            run.build_scope()
            postgres.drive_from_small_scope(conn, run.stats.scope_accounts or 0)
        run.candidates()
        run.best()
        run.reconcile()
        run.flags()
    return run.stats
