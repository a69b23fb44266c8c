"""The states the warehouse records, as enums: a run's outcome, a dead letter's status and
where a stream's backfill stands.

The columns hold the enums' values (plain strings), so the database and the JSON answers read
the same words the code compares against. docs/operations.md lists them for operators.
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """What became of a run (sync_runs.status)."""

    RUNNING = "running"  # started; its heartbeat says it is alive
    SUCCEEDED = "succeeded"  # every stage ran, nothing went wrong
    PARTIAL = "partial"  # every stage ran; some part was put off (the error says which)
    INTERRUPTED = "interrupted"  # a stop signal: the batch in hand was committed, then it ended
    FAILED = "failed"  # a stage raised; the error says why
    ABANDONED = "abandoned"  # its process died: the heartbeat stopped, the lock was let go

    @classmethod
    def _missing_(cls, value: object) -> RunStatus | None:
        # Runs recorded before the name `abandoned` called such a run `stale`.
        return cls.ABANDONED if value == "stale" else None

    @property
    def finished(self) -> bool:
        return self is not RunStatus.RUNNING

    @property
    def ok(self) -> bool:
        """Did the run leave the CRMs and the warehouse where a daemon wants them?"""
        return self in (RunStatus.SUCCEEDED, RunStatus.PARTIAL, RunStatus.INTERRUPTED)


class DeadLetterStatus(StrEnum):
    """A write that failed on its own (writeback_errors.status)."""

    PENDING = "pending"  # retried with backoff on a later tick
    SKIPPED = "skipped"  # an operator said stop (`ecosync deadletter skip`)


class BackfillState(StrEnum):
    """Where a stream's backfill stands (watermarks.backfill_cursor; NULL once complete)."""

    IN_PROGRESS = "in_progress"  # being pulled: a killed backfill continues from its last page
    # Pulled to the end; the backfill's matching, stamps and write-back have not all run yet.
    # A killed backfill resumed does not pull it again (the dirty queue keeps what is left).
    PULLED = "pulled"
