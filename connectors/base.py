"""The connector protocol: the few things the sync engine asks of a CRM.

A connector knows its API (auth, paging, limits, error bodies) and nothing of matching
or attribution. One implementation per CRM: connectors.salesforce, connectors.hubspot.
"""

from __future__ import annotations

import email.utils
import random
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Protocol, TypeVar

import tenacity

from schema.records import AccountRecord, OpportunityRecord, Stream

Record = AccountRecord | OpportunityRecord


@dataclass(frozen=True, slots=True)
class Watermark:
    """Tie-safe cursor: everything up to and including (modified_at, last_id) is committed.

    ``swept_at``: the end of the last complete sweep for deletions (a CRM that lists deleted
    records only in full sweeps them on a cadence, see ``Page.swept``), kept with the cursor
    so that a new process honours the cadence; None when unknown. Cursors compare by
    position only."""

    modified_at: datetime
    last_id: str = ""
    swept_at: datetime | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Page:
    """A page of records and the watermark that is safe to commit together with them.

    Every page of a pull carries ``until``, the window's end: the CRM's clock read from the
    window's own first response when the pull was given ``until=None`` (a window without
    records yields one empty page to say it). A page carrying ``swept`` ends a complete
    sweep for deletions: every record deleted before that moment (the CRM's clock) was in
    this pull's pages up to it; commit it with the page, never before."""

    stream: Stream
    records: Sequence[Record]
    watermark: Watermark | None
    until: datetime | None = None
    swept: datetime | None = None


@dataclass(frozen=True, slots=True)
class FieldUpdate:
    """Desired values of owned fields for one record, by logical field name (DESIGN.md 5)."""

    stream: Stream
    external_id: str
    values: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class WriteResult:
    external_id: str
    ok: bool
    error_code: str | None = None
    message: str | None = None
    retryable: bool = False


@dataclass(frozen=True, slots=True)
class FieldStatus:
    stream: Stream
    logical_name: str
    api_name: str
    exists: bool
    updateable: bool
    created: bool = False


@dataclass(slots=True)
class ApiUsage:
    """API calls this connector made, and the org/portal budget as last reported."""

    calls: int = 0
    daily_used: int | None = None
    daily_limit: int | None = None
    by_endpoint: dict[str, int] = field(default_factory=dict)
    # ecosync's own ceiling on daily_used (max_api_share of the limit): the connector refuses
    # calls past it (BudgetExhausted); the engine may stop reading earlier to leave room.
    daily_cap: int | None = None


class Connector(Protocol):
    name: str

    def check(self) -> list[str]:
        """Problems that stop a run (auth, missing objects or fields); empty when ready."""
        ...

    def pull(
        self, stream: Stream, since: Watermark | None, until: datetime | None, *,
        deleted: bool = True,
    ) -> Iterator[Page]:
        """Records modified in [since − lookback, until), as pages in bounded memory, each
        carrying ``until`` (at least one page). ``until=None``: the window ends at the CRM's
        clock when it answers the window's first request (its Date header), which costs no
        call of its own; an incremental tick's windows end so."""
        ...

    def count(self, stream: Stream, *, created_until: datetime | None = None) -> int:
        """Live (not deleted) records of the stream in the CRM, those created up to
        `created_until` when given (progress, completeness audits)."""
        ...

    def stored_form(self, stream: Stream, values: Mapping[str, object]) -> dict[str, str | None]:
        """Desired values (logical name → Python value) as the CRM will store and return them,
        in schema.values canonical text (e.g. text truncated to the field's length). The
        engine diffs these against `Record.owned`, which holds the same canonical form."""
        ...

    def write(self, stream: Stream, updates: Sequence[FieldUpdate]) -> list[WriteResult]:
        """Write owned fields in as few API calls as the platform allows; one result per update."""
        ...

    def ensure_fields(self, *, check_only: bool) -> list[FieldStatus]:
        """Verify (and unless check_only, create) the owned custom fields / properties."""
        ...

    def usage(self) -> ApiUsage:
        ...

    def exchange_rates(self) -> list[ExchangeRate]:
        """The CRM's dated exchange rates (DESIGN.md 6), empty when it keeps none or may not
        be asked (then the config's static rates apply)."""
        ...

    def server_time(self) -> datetime:
        """The CRM's current time (UTC, whole seconds), from the Date header of one light
        request. Read windows end at the CRM's clock (here, or from the window's own first
        response with ``pull(until=None)``), so this host's clock (skewed, or behind the
        CRM's) never decides which records a window holds."""
        ...


def carrying_end(pages: Iterable[Page], stream: Stream,
                 until: Callable[[], datetime]) -> Iterator[Page]:
    """The pages, each carrying the window's end (``until`` is asked once the window's first
    page is out: a clock read from the window's first response is known by then); one empty
    page carrying it when the window yields none. Pages leave as soon as they are read."""
    empty = True
    for page in pages:
        empty = False
        yield page if page.until is not None else replace(page, until=until())
    if empty:
        yield Page(stream, [], None, until=until())


def http_date(value: str | None) -> datetime | None:
    """An HTTP Date header (RFC 9110 IMF-fixdate) as an aware UTC datetime; None if absent
    or unreadable."""
    if not value:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


class ConnectorError(Exception):
    """Base of the errors a connector raises to the engine."""


class AuthFailed(ConnectorError):
    """Credentials rejected after the one re-authentication allowed; a user error."""


class MissingFields(ConnectorError):
    """Configured or owned fields do not exist / are not updateable; names object and field."""


class RateLimited(ConnectorError):
    """The platform refused for rate/volume; stop the run cleanly and retry after this time."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class BudgetExhausted(ConnectorError):
    """ecosync's own share of the daily API allocation (max_api_share) is used up."""


class TransientError(ConnectorError):
    """5xx, timeouts, dropped connections that outlived the retry policy."""


class ReadOnlyRefused(ConnectorError):
    """A write asked of a connector opened read-only (e.g. on a partner's CRM)."""

    def __init__(self, source: str, what: str) -> None:
        super().__init__(f"{source}: this connection is read-only; refused to {what} (no "
                         "call was made)")


class PagingStalled(ConnectorError):
    """A pager stopped making progress (the API served a page already read): the stream stops
    rather than asking for the same page until the API budget runs out."""


_NO_BOUND = object()


@dataclass(slots=True)
class PageGuard:
    """Makes a pager that stops making progress fail loudly.

    `ask(bound)` before each next-page request, with what positions it (a cursor, an offset,
    a (stamp, id) key): the same bound twice in a row, or with `ordered` one that does not
    move forward, is a stall. `got(ids)` after each page: a page whose rows all came in the
    page before is a stall too. Memory: one page of ids. Raising happens before the stalled
    page is yielded, so the stream's watermark stays at its last committed page.
    """

    what: str
    ordered: bool = False
    _bound: object = _NO_BOUND
    _ids: frozenset[str] = frozenset()

    def ask(self, bound: object) -> None:
        last = self._bound
        if last is not _NO_BOUND and (bound == last or (
                self.ordered and not bound > last)):  # type: ignore[operator]
            raise self.stalled(f"the next page was asked at {bound!r} after {last!r}")
        self._bound = bound

    def got(self, ids: Iterable[str]) -> None:
        page = frozenset(ids)
        if page and page <= self._ids:
            raise self.stalled(f"a page of {len(page)} rows all read in the page before")
        self._ids = page

    def stalled(self, detail: str) -> PagingStalled:
        return PagingStalled(
            f"{self.what}: the API stopped making progress ({detail}); the pull stops here "
            "and the stream's watermark stays at its last committed page. The next tick "
            "tries again; if this repeats, the CRM's API is at fault: report it to its support "
            "with this message")


@dataclass(frozen=True, slots=True)
class ExchangeRate:
    """Corporate-currency units per one unit of `currency`, in force from `effective_from`
    (None: since always) until the next rate of the same currency. `corporate` is the
    currency the rate converts to when the CRM says (a HubSpot portal's company currency):
    a rate to another currency than ecosync's corporate one must not be used."""

    currency: str
    effective_from: date | None
    corporate_per_unit: Decimal
    corporate: str | None = None


# ---- failures: one vocabulary, one retry policy; each CRM keeps only its classifier ----------


class Action(Enum):
    """What to do about a failed call, whichever CRM it came from."""

    RETRY = "retry"  # transient (5xx, timeout, dropped connection, lock): back off, repeat
    THROTTLE = "throttle"  # a rate window is full (HubSpot 429 burst/secondly): wait, repeat
    REAUTH = "reauth"  # the session or token expired: authenticate again once, repeat
    RATE_LIMITED = "rate_limited"  # an allocation is spent (a daily limit): stop the run
    AUTH_FAILED = "auth_failed"  # credentials or scopes refused: a user error
    MISCONFIGURED = "misconfigured"  # e.g. an untrusted TLS certificate: a user error
    FAIL = "fail"  # the request itself is refused: no retry, the caller decides


RETRYABLE = frozenset({Action.RETRY, Action.THROTTLE, Action.REAUTH})
MAX_ATTEMPTS = 6
WAIT_INITIAL_S = 0.5
WAIT_MAX_S = 30.0
JITTER = 0.25  # up to this share is added to a wait, so retries from many clients spread
# A Retry-After longer than this is not worth blocking a tick for: stop and report instead.
RETRY_AFTER_CAP_S = 120.0
THROTTLE_DEFAULT_S = 10.0  # a rate window's length when nothing says otherwise


@dataclass(frozen=True, slots=True)
class Decision:
    """A classifier's verdict on one failure: the action, and what the server said."""

    action: Action
    code: str | None = None
    message: str = ""
    retry_after_s: float | None = None


class Judged(Protocol):
    """What the retry policy reads of a classifier's verdict (a Decision, or a CRM's richer
    verdict with the same two attributes)."""

    @property
    def action(self) -> Action: ...

    @property
    def retry_after_s(self) -> float | None: ...


def backoff_s(verdict: Judged, attempt: int, rng: random.Random | None = None) -> float:
    """Seconds to wait before attempt `attempt + 1` (attempt counts from 1), DESIGN.md 8.

    RETRY: exponential from 0.5 s, doubling, 30 s at most, plus jitter; never shorter than a
    server's Retry-After (itself capped at 2 minutes). THROTTLE: the rate window (the hint),
    longer on later attempts, since other clients share it. REAUTH: at once."""
    jitter = (rng or random).uniform(0.0, JITTER)
    hint = verdict.retry_after_s
    if verdict.action is Action.REAUTH:
        return 0.0
    if verdict.action is Action.THROTTLE:
        base = hint or THROTTLE_DEFAULT_S
        return base * (1 + 0.5 * (attempt - 1)) + jitter * base
    wait = min(WAIT_MAX_S, WAIT_INITIAL_S * 2.0 ** max(0, attempt - 1)) * (1 + jitter)
    if hint is not None:
        wait = max(wait, min(hint, RETRY_AFTER_CAP_S))
    return wait


V = TypeVar("V", bound=Judged)


def retry_policy(
    judge: Callable[[BaseException], V], *, sleep: Callable[[float], None],
    on_retry: Callable[[V, float], None] | None = None, attempts: int = MAX_ATTEMPTS,
) -> tenacity.Retrying:
    """The one retry policy: repeat what the classifier calls RETRY, THROTTLE or REAUTH,
    waiting as `backoff_s` says; `on_retry(verdict, wait)` runs before each wait (log it,
    log in again, hold a pacer). Anything else, or the last failure, is re-raised as is:
    the connector turns it into a ConnectorError."""

    def should_retry(state: tenacity.RetryCallState) -> bool:
        outcome = state.outcome
        if outcome is None or not outcome.failed:
            return False
        exc = outcome.exception()
        return exc is not None and judge(exc).action in RETRYABLE

    def wait(state: tenacity.RetryCallState) -> float:
        assert state.outcome is not None
        exc = state.outcome.exception()
        assert exc is not None
        verdict = judge(exc)
        seconds = backoff_s(verdict, state.attempt_number)
        if on_retry is not None:
            on_retry(verdict, seconds)
        return seconds

    kwargs: dict[str, Any] = {"sleep": sleep}
    return tenacity.Retrying(retry=should_retry, wait=wait,
                             stop=tenacity.stop_after_attempt(attempts), reraise=True, **kwargs)
