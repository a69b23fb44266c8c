"""A partner's own CRM as its source (`source = "salesforce"|"hubspot"`, DESIGN.md 10).

Read-only, through the same connectors as our CRMs, opened with `read_only=True`: every write
method raises before any call, and ecosync neither requires nor reads owned fields there. The
partner's accounts and opportunities land in tables of their own (never in our accounts), a
page at a time with a tie-safe watermark per stream, incrementally like our own pulls,
deleted records included. The partner's snapshot of partner accounts is then derived from
them in SQL: each live account with its population under the partner's mapping
(`populations`), keyed by its CRM id, and merged like any import (`merge_snapshot`).

A partner CRM that fails (credentials, a missing field, an outage) fails that partner only:
`pull_partner_crms` reports it in one line and goes on with the next.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, String, Table, case, false, func, literal, null, select
from sqlalchemy.orm import Session

from connectors.base import Connector, ConnectorError, Page, Watermark
from schema.models import (
    Partner,
    PartnerCrmAccount,
    PartnerCrmOpportunity,
    PartnerCrmWatermark,
)
from schema.records import AccountRecord, OpportunityRecord, Stream
from schema.upsert import bulk_upsert
from sync.config import CRM_AUTH_REQUIRED, PartnerConfig, PartnerPopulationsConfig
from sync.errors import UserError
from sync.ingest import storable
from sync.matching.keys import (
    GENERIC_DOMAINS,
    normalize_duns,
    normalize_name,
    registrable_domain,
)
from sync.matching.worktables import table_of
from sync.partners.csv_import import lock_partner, merge_snapshot
from sync.partners.staging import stage_query, staged_scope
from sync.progress import SILENT, Progress

CRM_SOURCES = tuple(CRM_AUTH_REQUIRED)
STREAMS = (Stream.ACCOUNTS, Stream.OPPORTUNITIES)
GUIDE = "docs/partner-data.md"
Transaction = Callable[[], AbstractContextManager[Session]]


def partner_connector(partner: PartnerConfig) -> Connector:
    """The partner's CRM, opened read-only with the partner's own credentials."""
    crm = partner.crm
    auth = crm.auth or next(iter(CRM_AUTH_REQUIRED[partner.source]))
    if partner.source == "salesforce":
        from connectors.salesforce import SalesforceConnector
        from connectors.salesforce.config import SalesforceConfig

        sf = SalesforceConfig(
            enabled=True, name=partner.id, auth=auth,  # type: ignore[arg-type]
            instance_url=crm.instance_url, login_url=crm.login_url, client_id=crm.client_id,
            client_secret=crm.client_secret, username=crm.username, password=crm.password,
            security_token=crm.security_token, private_key_file=crm.private_key_file,
            session_id=crm.session_id, ca_bundle=crm.ca_bundle, duns_field=crm.duns_field,
            lookback_minutes=crm.lookback_minutes, max_api_share=crm.max_api_share)
        return SalesforceConnector(sf, read_only=True)
    if partner.source == "hubspot":
        from connectors.hubspot import HubSpotConnector
        from connectors.hubspot.config import HubSpotConfig

        hs = HubSpotConfig(
            enabled=True, name=partner.id, auth=auth,  # type: ignore[arg-type]
            base_url=crm.base_url, access_token=crm.access_token, client_id=crm.client_id,
            client_secret=crm.client_secret, refresh_token=crm.refresh_token,
            ca_bundle=crm.ca_bundle, duns_property=crm.duns_field,
            lookback_minutes=crm.lookback_minutes, max_api_share=crm.max_api_share)
        return HubSpotConnector(hs, read_only=True)
    raise UserError(f"partner '{partner.id}' has source = \"{partner.source}\", not a CRM")


# ---- landing ---------------------------------------------------------------------------------


def _account_row(partner_id: str, rec: AccountRecord, now: datetime,
                 generic: frozenset[str]) -> dict[str, Any]:
    return {"partner_id": partner_id, "external_id": rec.external_id, "name": rec.name,
            "website": rec.website,
            "domain_key": registrable_domain(rec.website, generic=generic),
            "name_key": normalize_name(rec.name), "duns": normalize_duns(rec.duns),
            "account_type": rec.account_type, "is_deleted": rec.is_deleted,
            "modified_at": rec.modified_at, "landed_at": now}


def _opportunity_row(partner_id: str, rec: OpportunityRecord, now: datetime) -> dict[str, Any]:
    return {"partner_id": partner_id, "external_id": rec.external_id,
            "account_external_id": rec.account_external_id, "status": rec.status.value,
            "is_deleted": rec.is_deleted, "modified_at": rec.modified_at, "landed_at": now}


def _limits(table: Table) -> dict[str, int]:
    return {c.key: int(c.type.length) for c in table.columns
            if isinstance(c.type, String) and c.type.length}


def land_page(session: Session, partner_id: str, page: Page, *, now: datetime,
              generic: frozenset[str] = GENERIC_DOMAINS) -> int:
    """Upsert the page's records and move the stream's watermark, in one transaction."""
    if page.stream is Stream.ACCOUNTS:
        table = table_of(PartnerCrmAccount)
        rows = [_account_row(partner_id, r, now, generic) for r in page.records
                if isinstance(r, AccountRecord)]
    else:
        table = table_of(PartnerCrmOpportunity)
        rows = [_opportunity_row(partner_id, r, now) for r in page.records
                if isinstance(r, OpportunityRecord)]
    limits = _limits(table)
    if rows:
        bulk_upsert(session, table, [storable(r, limits) for r in rows],
                    ["partner_id", "external_id"], only_if_changed=True)
    if page.watermark is not None:
        save_watermark(session, partner_id, page.stream, page.watermark, now=now)
    if page.swept is not None:  # a complete sweep for deletions (connectors.base.Page)
        row = session.get(PartnerCrmWatermark, (partner_id, page.stream.value))
        if row is None:
            row = PartnerCrmWatermark(partner_id=partner_id, stream=page.stream.value,
                                      updated_at=now)
            session.add(row)
        if row.deleted_swept_at is None or page.swept > row.deleted_swept_at:
            row.deleted_swept_at = page.swept
        session.flush()
    return len(rows)


def read_watermark(session: Session, partner_id: str, stream: Stream) -> Watermark | None:
    row = session.get(PartnerCrmWatermark, (partner_id, stream.value))
    if row is None or row.modified_at is None:
        return None
    return Watermark(row.modified_at, row.last_id or "", row.deleted_swept_at)


def save_watermark(session: Session, partner_id: str, stream: Stream, mark: Watermark, *,
                   now: datetime) -> None:
    """Never backwards: a lookback re-read must not rewind the committed position."""
    row = session.get(PartnerCrmWatermark, (partner_id, stream.value))
    if row is None:
        session.add(PartnerCrmWatermark(partner_id=partner_id, stream=stream.value,
                                        modified_at=mark.modified_at, last_id=mark.last_id,
                                        updated_at=now))
        session.flush()
        return
    if row.modified_at is None or (mark.modified_at, mark.last_id) > (
            row.modified_at, row.last_id or ""):
        row.modified_at, row.last_id = mark.modified_at, mark.last_id
    row.updated_at = now
    session.flush()


# ---- the snapshot ----------------------------------------------------------------------------


def population_case(mapping: PartnerPopulationsConfig, account_type: Any, won: Any,
                    open_: Any) -> Any:
    """The partner mapping as SQL: `types` first, then a won deal, a customer type, an open
    deal; else prospect. The defaults are the rule ecosync applies to our own accounts
    (sync.populations), so both sides of an exchange count alike."""
    kind = func.lower(func.coalesce(account_type, ""))
    whens: list[tuple[Any, Any]] = [(kind == value.lower(), literal(population))
                                    for value, population in mapping.types.items()]
    if mapping.customer_if_won:
        whens.append((won == 1, literal("customer")))
    whens += [(kind.startswith(prefix.lower(), autoescape=True), literal("customer"))
              for prefix in mapping.customer_types if prefix]
    if mapping.open_opportunity_if_open:
        whens.append((open_ == 1, literal("open_opportunity")))
    return case(*whens, else_=literal("prospect")) if whens else literal("prospect")


def snapshot_query(partner: PartnerConfig) -> Select[Any]:
    """(seq, line, row_key, *staging.ROW_FIELDS) of the partner's live CRM accounts."""
    a, o = PartnerCrmAccount, PartnerCrmOpportunity
    deals = (select(o.account_external_id.label("account"),
                    func.max(case((o.status == "won", 1), else_=0)).label("won"),
                    func.max(case((o.status == "open", 1), else_=0)).label("open"))
             .where(o.partner_id == partner.id, o.is_deleted == false())
             .group_by(o.account_external_id).subquery("deals"))
    population = population_case(partner.populations, a.account_type,
                                 func.coalesce(deals.c.won, 0), func.coalesce(deals.c.open, 0))
    none = null()
    columns = (a.id, literal(0), literal("x:") + a.external_id, a.external_id, a.name, none,
               a.website, a.domain_key, a.name_key, a.duns, population, none, none)
    query = cast(Select[Any], select(*columns)
                 .outerjoin(deals, deals.c.account == a.external_id)
                 .where(a.partner_id == partner.id, a.is_deleted == false(),
                        (a.name_key.is_not(None)) | (a.domain_key.is_not(None))))
    return query


def rebuild_snapshot(session: Session, partner: PartnerConfig, *,
                     now: datetime) -> tuple[int, int, int, int]:
    """The partner's partner accounts from its CRM rows, set-based; returns (added, changed,
    removed, unchanged) and bumps the snapshot version when anything changed."""
    row = lock_partner(session, partner.id)
    conn = session.connection()
    with staged_scope(conn, stage_query(conn, snapshot_query(partner))) as staged:
        counts = merge_snapshot(session, partner.id, staged, now=now)
    if any(counts[:3]) or row.snapshot_version == 0:
        row.snapshot_version += 1
        row.last_import_at = now
        row.updated_at = now
    session.flush()
    return counts


# ---- one partner, one tick -------------------------------------------------------------------


@dataclass
class CrmRefresh:
    partner_id: str
    pulled: dict[str, int]
    snapshot: tuple[int, int, int, int] | None = None  # None: nothing new to derive
    api_calls: int = 0

    def summary(self) -> str:
        pulled = ", ".join(f"{n} {stream}" for stream, n in self.pulled.items())
        if self.snapshot is None:
            return f"{self.partner_id}: read {pulled}; its list is unchanged"
        added, changed, removed, unchanged = self.snapshot
        return (f"{self.partner_id}: read {pulled}; list: {added} added, {changed} changed, "
                f"{removed} removed, {unchanged} unchanged")


def refresh_partner_crm(transaction: Transaction, partner: PartnerConfig, *, now: datetime,
                        backfill: bool = False, generic: frozenset[str] = GENERIC_DOMAINS,
                        connector: Connector | None = None,
                        progress: Progress = SILENT) -> CrmRefresh:
    """Read what changed in the partner's CRM since its watermarks (everything when
    `backfill` or on the first run), land it, and derive its list again if anything came.
    Raises ConnectorError (or UserError) for this partner; earlier pages stay landed."""
    connector = connector or partner_connector(partner)
    calls_before = connector.usage().calls
    result = CrmRefresh(partner.id, {s.value: 0 for s in STREAMS})
    for stream in STREAMS:
        with transaction() as session:
            since = None if backfill else read_watermark(session, partner.id, stream)
        label = f"{partner.id}/{stream.value}"
        progress.start("partner sources", label)
        # The window ends at the partner CRM's clock, not ours: read from its first answer
        # (every page carries it), so the clock costs no call of its own.
        until: datetime | None = None
        for page in connector.pull(stream, since, None):
            until = until or page.until
            with transaction() as session:
                landed = land_page(session, partner.id, page, now=now, generic=generic)
            result.pulled[stream.value] += landed
            progress.advance("partner sources", label, landed)
        progress.done("partner sources", label)
        if until is None:
            raise ConnectorError(f"{partner.id}: the pull of {stream.value} did not say where "
                                 "its window ended")
        with transaction() as session:  # the whole window is landed
            save_watermark(session, partner.id, stream, Watermark(until, ""), now=now)
    with transaction() as session:
        known = session.get(Partner, partner.id)
        first = known is None or known.snapshot_version == 0
    if any(result.pulled.values()) or first:
        with transaction() as session:
            result.snapshot = rebuild_snapshot(session, partner, now=now)
    result.api_calls = connector.usage().calls - calls_before
    return result


def pull_partner_crms(ctx: Any) -> None:
    """Tick stage `partner sources`: every partner whose list is its own CRM. One that fails
    is one line in the run's errors; the others, and the tick, go on."""
    from sync.matching.keys import generic_domains

    generic = generic_domains(ctx.config.matching.generic_domains)
    for partner in ctx.config.partners:
        if partner.source not in CRM_SOURCES:
            continue
        if ctx.stopping():
            return
        try:
            done = refresh_partner_crm(ctx.transaction, partner, now=ctx.started,
                                       backfill=ctx.options.backfill, generic=generic,
                                       progress=ctx.progress)
        except (ConnectorError, UserError) as exc:
            text = exc.message if isinstance(exc, UserError) else str(exc)
            line = (f"partner {partner.id}: its {partner.source} could not be read ({text}); "
                    f"its previous list stays. Check [partners.crm] of partner "
                    f"'{partner.id}' ({GUIDE}, 'Partner CRM sources')")
            ctx.report.errors.append(line)
            ctx.report.counts.tick["partner_crms_failed"] += 1
            ctx.log.error("partner CRM failed", partner=partner.id, source=partner.source,
                          error=text)
            continue
        for stream, n in done.pulled.items():
            ctx.report.counts.of(f"partner:{partner.id}", Stream(stream)).pulled += n
        ctx.report.counts.tick["partner_crm_api_calls"] += done.api_calls
        ctx.log.info("partner CRM read", partner=partner.id, summary=done.summary())


def check_partner_crm(partner: PartnerConfig) -> tuple[bool, str]:
    """For `doctor`: can the partner's CRM be read with its credentials? (ok, detail)."""
    try:
        connector = partner_connector(partner)
        problems = connector.check()
    except (ConnectorError, UserError) as exc:
        return False, exc.message if isinstance(exc, UserError) else str(exc)
    if problems:
        return False, "; ".join(problems)
    return True, (f"{partner.source} readable with the partner's credentials (read-only: "
                  f"ecosync never writes there)")


