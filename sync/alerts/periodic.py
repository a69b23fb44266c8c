"""Events of a period rather than of a record: the weekly digest and the ops thresholds.

Queued by the delivery stage before it sends, in their own transaction, once per period
(UNIQUE(alert_name, fact_key) with the period in the key):
- digest.weekly: per partner shared by name, the alert's `digest_size` top rows of
  `next_accounts()`, on the first tick of each ISO week on or after `digest_weekday` (UTC);
- ops.dead_letters: pending dead letters at or past `dead_letters_threshold`, once a day;
- ops.api_budget: a CRM's API use today at or past `api_budget_threshold` of its daily
  limit, once a day per CRM.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from schema.models import AlertEvent, WritebackError
from sync.alerts.detect import outbox_row
from sync.attribution.open_pipeline import open_pipeline
from sync.config import Config
from sync.config.alerts import DIGEST_MAX, WEEKDAYS, AlertConfig, EventKind
from sync.reports.next_accounts import NextAccount, named_partners, next_accounts

ApiUse = Mapping[str, tuple[int, int]]  # CRM name -> (calls used today, daily limit)


def queue_periodic(session: Session, config: Config, *, now: datetime, run_id: int | None,
                   api_use: ApiUse) -> int:
    """Queue the period's events not queued yet; returns how many (caller commits)."""
    queued = 0
    digest: dict[str, list[NextAccount]] | None = None
    pending: int | None = None
    for alert in config.alerts:
        if alert.wants(EventKind.DEAD_LETTERS.value):
            if pending is None:
                pending = int(session.execute(
                    select(func.count()).select_from(WritebackError)
                    .where(WritebackError.status == "pending")).scalar_one())
            if pending >= alert.dead_letters_threshold:
                queued += _queue(session, alert, EventKind.DEAD_LETTERS,
                                 f"{now.date().isoformat()}",
                                 {"pending": pending, "threshold": alert.dead_letters_threshold},
                                 now, run_id)
        if alert.wants(EventKind.API_BUDGET.value):
            for source, (used, limit) in sorted(api_use.items()):
                if limit and used / limit >= alert.api_budget_threshold:
                    queued += _queue(session, alert, EventKind.API_BUDGET,
                                     f"{source}:{now.date().isoformat()}",
                                     {"source": source, "used": used, "limit": limit,
                                      "ratio": round(used / limit, 4),
                                      "threshold": alert.api_budget_threshold}, now, run_id)
        if alert.wants(EventKind.DIGEST_WEEKLY.value) and _digest_due(alert, now):
            year, week, _ = now.isocalendar()
            label = f"{year}-W{week:02d}"
            # The ranking streams every named overlap: made only in the tick that queues the
            # week's digests, not in every tick after it.
            missing = [pid for pid, _name, _share in named_partners(session)
                       if (not alert.partners or pid in alert.partners)
                       and not _queued(session, alert, EventKind.DIGEST_WEEKLY, f"{pid}:{label}")]
            if missing and digest is None:
                digest = _digest_rows(session, config, now)
            for pid in missing:
                rows = (digest or {}).get(pid, [])
                queued += _queue(session, alert, EventKind.DIGEST_WEEKLY, f"{pid}:{label}", {
                    "partner_id": pid, "week": label,
                    "accounts": [_digest_row(r) for r in rows[:alert.digest_size]]},
                    now, run_id)
    return queued


def _digest_due(alert: AlertConfig, now: datetime) -> bool:
    return now.weekday() >= WEEKDAYS.index(alert.digest_weekday)


def _digest_rows(session: Session, config: Config,
                 now: datetime) -> dict[str, list[NextAccount]]:
    out: dict[str, list[NextAccount]] = {}
    for row in next_accounts(session, today=now.date(),
                             pipeline=open_pipeline(session, config.attribution, now.date()),
                             limit=DIGEST_MAX):
        out.setdefault(row.partner_id, []).append(row)
    return out


def _digest_row(r: NextAccount) -> dict[str, Any]:
    # `owner_name` carries the contact as shown today; rendering re-checks the policy.
    return {"account_id": r.account_id, "account": r.account, "source": r.source,
            "external_id": r.external_id, "their_population": r.their_population,
            "open_pipeline": str(r.open_pipeline), "currency": r.currency, "stage": r.stage,
            "overlap_since": r.overlap_since.isoformat(), "owner_name": r.contact,
            "joint_pursuit": r.joint_pursuit, "score": r.score, "why": r.why}


def _queued(session: Session, alert: AlertConfig, event: EventKind, subject: str) -> bool:
    return session.scalar(select(AlertEvent.id).where(
        AlertEvent.alert_name == alert.name,
        AlertEvent.fact_key == f"{event.value}:{subject}")) is not None


def _queue(session: Session, alert: AlertConfig, event: EventKind, subject: str,
           payload: dict[str, Any], now: datetime, run_id: int | None) -> int:
    fact_key = f"{event.value}:{subject}"
    if _queued(session, alert, event, subject):
        return 0
    try:
        with session.begin_nested():
            session.add(outbox_row(alert, event.value, fact_key, payload, now, run_id))
    except IntegrityError:
        return 0  # queued by a concurrent run
    return 1
