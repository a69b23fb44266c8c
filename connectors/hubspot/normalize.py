"""Pure functions: HubSpot JSON (as the v3/v4 APIs return it) → ecosync records.

No I/O here. Inputs are plain dicts as decoded from the wire: every property value is a
string or null (numbers, booleans and dates included), timestamps are ISO 8601 with
milliseconds and Z on v3 reads but epoch milliseconds in older APIs, so both are parsed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.hubspot.owners import Owner
from connectors.hubspot.properties import StreamProperties, read_value
from schema.records import AccountRecord, OpportunityRecord, OpportunityStatus

# v4 association type ids (HUBSPOT_DEFINED): deal → company "Primary" and unlabeled.
DEAL_TO_COMPANY_PRIMARY = 5
DEAL_TO_COMPANY_UNLABELED = 341
# v3 inline association types: the primary link is listed as this type, and again (like every
# link) as "<type>_unlabeled".
INLINE_PRIMARY = "deal_to_company"


@dataclass(frozen=True, slots=True)
class StageInfo:
    """What the pipelines API says about one deal stage."""

    is_closed: bool
    won: bool


def parse_time(raw: Any) -> datetime | None:
    """ISO 8601 (``2024-01-01T12:00:00.123Z``, any offset) or epoch ms → aware UTC."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, datetime):
        return raw.astimezone(UTC) if raw.tzinfo else raw.replace(tzinfo=UTC)
    text = str(raw).strip()
    if text.lstrip("-").isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_date(raw: Any) -> date | None:
    """A deal close date: a datetime property, so the UTC calendar day of the instant."""
    if raw is None or raw == "":
        return None
    text = str(raw).strip()
    if len(text) == 10 and text[4] == "-" and text[7] == "-":
        try:
            return date.fromisoformat(text)
        except ValueError:
            return None
    moment = parse_time(text)
    return moment.date() if moment else None


def parse_decimal(raw: Any) -> Decimal | None:
    if raw is None or str(raw).strip() == "":
        return None
    try:
        value = Decimal(str(raw).strip().replace(",", ""))
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _text(raw: Any) -> str | None:
    if raw is None:
        return None
    text = str(raw).strip()
    return text or None


def _bool(raw: Any) -> bool | None:
    if raw is None or raw == "":
        return None
    return str(raw).strip().lower() == "true"


def modified_at(raw: Mapping[str, Any]) -> datetime:
    """hs_lastmodifieddate, else updatedAt; the search cursor and the watermark use it."""
    props = raw.get("properties") or {}
    moment = parse_time(props.get("hs_lastmodifieddate")) or parse_time(raw.get("updatedAt"))
    if moment is None:
        raise ValueError(f"HubSpot record {raw.get('id')!r} has no hs_lastmodifieddate")
    if raw.get("archived"):
        # Archiving does not move hs_lastmodifieddate; the deletion is the latest change.
        archived = parse_time(raw.get("archivedAt"))
        if archived is not None and archived > moment:
            return archived
    return moment


def owned_values(props: Mapping[str, Any], names: StreamProperties) -> dict[str, str | None]:
    return {p.logical: read_value(p.kind, props.get(p.name)) for p in names.owned}


def company_record(raw: Mapping[str, Any], *, source: str, names: StreamProperties,
                   owners: Mapping[str, Owner] | None = None) -> AccountRecord:
    """`owners`: what the owners API says of the owner ids on this page (none without the
    scope: the names then stay empty)."""
    props: Mapping[str, Any] = raw.get("properties") or {}
    owner_id = _text(props.get("hubspot_owner_id"))
    owner = (owners or {}).get(owner_id or "")
    # `domain` is HubSpot's own identity for a company (it de-duplicates on it); `website` is
    # a URL users type. Both reduce to the same registrable domain in nearly all cases.
    website = _text(props.get("domain")) or _text(props.get("website"))
    return AccountRecord(
        source=source,
        external_id=str(raw["id"]),
        modified_at=modified_at(raw),
        name=_text(props.get("name")),
        website=website,
        owner_id=owner_id,
        owner_name=owner.name if owner else None,
        owner_email=owner.email if owner else None,
        account_type=_text(props.get("lifecyclestage")),
        duns=_text(props.get(names.duns)) if names.duns else None,
        created_at=parse_time(props.get("createdate")) or parse_time(raw.get("createdAt")),
        is_deleted=bool(raw.get("archived")),
        country=_text(props.get("country")),
        owned=owned_values(props, names),
    )


def deal_status(props: Mapping[str, Any], stages: Mapping[str, StageInfo]) -> OpportunityStatus:
    """open / won / lost from the stage's pipeline metadata, else HubSpot's calculated flags."""
    stage = stages.get(str(props.get("dealstage") or ""))
    if stage is not None:
        closed, won = stage.is_closed, stage.won
    else:
        closed = bool(_bool(props.get("hs_is_closed")))
        won = bool(_bool(props.get("hs_is_closed_won")))
    if won:
        return OpportunityStatus.WON
    return OpportunityStatus.LOST if closed else OpportunityStatus.OPEN


def deal_record(raw: Mapping[str, Any], *, source: str, names: StreamProperties,
                stages: Mapping[str, StageInfo], company_id: str | None) -> OpportunityRecord:
    props: Mapping[str, Any] = raw.get("properties") or {}
    return OpportunityRecord(
        source=source,
        external_id=str(raw["id"]),
        modified_at=modified_at(raw),
        account_external_id=company_id,
        name=_text(props.get("dealname")),
        stage=_text(props.get("dealstage")),
        status=deal_status(props, stages),
        amount=parse_decimal(props.get("amount")),
        currency=(_text(props.get("deal_currency_code")) or "").upper() or None,
        close_date=parse_date(props.get("closedate")),
        created_at=parse_time(props.get("createdate")) or parse_time(raw.get("createdAt")),
        referring_partner=(_text(props.get(names.referring_partner))
                           if names.referring_partner else None),
        lead_source=_text(props.get(names.lead_source)) if names.lead_source else None,
        is_deleted=bool(raw.get("archived")),
        owned=owned_values(props, names),
    )


def stage_map(pipelines: Iterable[Mapping[str, Any]]) -> dict[str, StageInfo]:
    """Stage id → closed/won from ``GET /crm/v3/pipelines/deals``.

    Stage metadata values are strings: ``isClosed`` "true"/"false" and ``probability``
    "0.0".."1.0". A closed stage is won when its probability is 1 (HubSpot's closed-won
    semantics); stage ids are unique across a portal's deal pipelines.
    """
    out: dict[str, StageInfo] = {}
    for pipeline in pipelines:
        for stage in pipeline.get("stages") or ():
            meta = stage.get("metadata") or {}
            closed = str(meta.get("isClosed", "false")).lower() == "true"
            probability = parse_decimal(meta.get("probability"))
            won = closed and probability is not None and probability >= 1
            out[str(stage.get("id"))] = StageInfo(closed, won)
    return out


def primary_company(targets: Iterable[Mapping[str, Any]]) -> str | None:
    """The deal's primary company from a v4 association list; else the lowest company id.

    A deal may be linked to several companies; the "Primary" label (type 5) names the one
    the deal belongs to. Deals without a primary link still get their single (or lowest-id)
    company so that matching has an account to work with.
    """
    fallback: int | None = None
    for target in targets:
        try:
            company = int(str(target.get("toObjectId")))
        except ValueError:
            continue
        for kind in target.get("associationTypes") or ():
            if kind.get("typeId") == DEAL_TO_COMPANY_PRIMARY or kind.get("label") == "Primary":
                return str(company)
        fallback = company if fallback is None else min(fallback, company)
    return None if fallback is None else str(fallback)


def inline_company(raw: Mapping[str, Any]) -> tuple[str | None, bool]:
    """(company, complete) from a v3 read with ``associations=companies``.

    Each link is listed twice (as ``deal_to_company`` when primary, and always as
    ``deal_to_company_unlabeled``): the primary wins, else the lowest company id, as for v4.
    ``complete`` is False when HubSpot cut the list off (its block carries ``paging.next``
    after 100 entries): the primary may be on a later page, so the caller reads that deal's
    associations in full. No block at all means no associated company."""
    block = (raw.get("associations") or {}).get("companies")
    if not block:
        return None, True
    if (block.get("paging") or {}).get("next"):
        return None, False
    fallback: int | None = None
    for entry in block.get("results") or ():
        try:
            company = int(str(entry.get("id")))
        except ValueError:
            continue
        if entry.get("type") == INLINE_PRIMARY:
            return str(company), True
        fallback = company if fallback is None else min(fallback, company)
    return (None if fallback is None else str(fallback)), True
