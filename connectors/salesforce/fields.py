"""Describe (once per run) and which fields each stream reads and writes in this org.

A configured field that does not exist is reported before anything is pulled, naming the
object, the field and the config key, in one MissingFields error for all of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors.base import FieldStatus, MissingFields
from connectors.salesforce.config import SalesforceConfig
from connectors.salesforce.normalize import FieldNames
from connectors.salesforce.session import Api
from schema.owned_fields import owned_fields
from schema.records import Stream

SOBJECT = {Stream.ACCOUNTS: "Account", Stream.OPPORTUNITIES: "Opportunity"}
STANDARD = {
    # BillingCountry exists in every org; with State and Country picklists on, it holds the
    # picklist's label, so it is consistent there without also reading BillingCountryCode.
    Stream.ACCOUNTS: ("Id", "Name", "Website", "OwnerId", "Type", "BillingCountry",
                      "CreatedDate", "SystemModstamp", "IsDeleted"),
    Stream.OPPORTUNITIES: ("Id", "AccountId", "Name", "StageName", "Amount", "CloseDate",
                           "CreatedDate", "IsClosed", "IsWon", "LeadSource", "SystemModstamp",
                           "IsDeleted"),
}
# The account owner's name and e-mail through the OwnerId relationship (a User: every org
# has these fields, readable by any API user), on the account query itself: no extra call.
# REST nests them ("Owner": {"Name", "Email"}, or null); Bulk CSV names the columns
# "Owner.Name" and "Owner.Email".
OWNER_FIELDS = ("Owner.Name", "Owner.Email")
ENSURE_HINT = "run `ecosync fields ensure --source salesforce`"


@dataclass(frozen=True, slots=True)
class FieldInfo:
    name: str
    type: str
    length: int
    scale: int
    updateable: bool


@dataclass(frozen=True, slots=True)
class StreamFields:
    sobject: str
    select: tuple[str, ...]
    names: FieldNames
    info: Mapping[str, FieldInfo]  # by API name, for the fields this stream selects


def owned_api_names(config: SalesforceConfig, stream: Stream) -> dict[str, str]:
    overrides = config.account_fields if stream is Stream.ACCOUNTS else config.opportunity_fields
    return {f.logical: overrides.get(f.logical, f.salesforce) for f in owned_fields(stream)}


def _override_key(stream: Stream) -> str:
    return "account_fields" if stream is Stream.ACCOUNTS else "opportunity_fields"


class Catalog:
    """Describe results of Account and Opportunity, fetched lazily and kept for the run."""

    def __init__(self, api: Api, config: SalesforceConfig, *, owned: bool = True) -> None:
        self.api = api
        self.config = config
        # False on a read-only connection (a partner's org): ecosync owns no field there, so
        # none is required, selected or read back.
        self.owned = owned
        self._describe: dict[str, dict[str, FieldInfo]] = {}

    def forget(self) -> None:
        self._describe.clear()

    def describe(self, sobject: str) -> dict[str, FieldInfo]:
        if sobject not in self._describe:
            body: Any = self.api.call(lambda sf: sf.restful(f"sobjects/{sobject}/describe"))
            infos: dict[str, FieldInfo] = {}
            for f in body.get("fields", []):
                info = FieldInfo(str(f["name"]), str(f.get("type", "string")),
                                 int(f.get("length") or 0), int(f.get("scale") or 0),
                                 bool(f.get("updateable", False)))
                infos[info.name.lower()] = info
            self._describe[sobject] = infos
        return self._describe[sobject]

    def field(self, sobject: str, name: str) -> FieldInfo | None:
        return self.describe(sobject).get(name.lower())

    # ------------------------------------------------------------------ pull
    def problems(self, stream: Stream, *, include_owned: bool = True) -> list[str]:
        """Every configured or required field of the stream that this org lacks."""
        sobject = SOBJECT[stream]
        out: list[str] = []
        for name in STANDARD[stream]:
            if self.field(sobject, name) is None:
                out.append(f"{sobject}.{name} does not exist (a standard field the "
                           "integration user cannot see: grant it read access)")
        extras = ([("duns_field", self.config.duns_field)] if stream is Stream.ACCOUNTS
                  else [("referring_partner_field", self.config.referring_partner_field)])
        for key, name in extras:
            if name and self.field(sobject, name) is None:
                out.append(f"{sobject}.{name} does not exist (crm.salesforce.{key}); fix the"
                           " key or create the field")
        if include_owned and self.owned:
            for logical, api_name in owned_api_names(self.config, stream).items():
                info = self.field(sobject, api_name)
                if info is None:
                    out.append(f"{sobject}.{api_name} does not exist (owned field {logical},"
                               f" crm.salesforce.{_override_key(stream)}.{logical}); "
                               f"{ENSURE_HINT}")
        return out

    def stream_fields(self, stream: Stream) -> StreamFields:
        problems = self.problems(stream)
        if problems:
            raise MissingFields("Salesforce: " + "; ".join(problems))
        sobject = SOBJECT[stream]
        owned = owned_api_names(self.config, stream) if self.owned else {}
        select: list[str] = list(STANDARD[stream])
        if stream is Stream.ACCOUNTS:
            select += OWNER_FIELDS
        duns = referring = ""
        if stream is Stream.ACCOUNTS and self.config.duns_field:
            duns = self._canonical(sobject, self.config.duns_field)
        if stream is Stream.OPPORTUNITIES and self.config.referring_partner_field:
            referring = self._canonical(sobject, self.config.referring_partner_field)
        currency = stream is Stream.OPPORTUNITIES and \
            self.field(sobject, "CurrencyIsoCode") is not None
        owned = {logical: self._canonical(sobject, api) for logical, api in owned.items()}
        for extra in (duns, referring, "CurrencyIsoCode" if currency else "",
                      *owned.values()):
            if extra and extra not in select:
                select.append(extra)
        info = {n: i for n in select if (i := self.field(sobject, n)) is not None}
        return StreamFields(sobject, tuple(select),
                            FieldNames(owned=owned, duns=duns, referring_partner=referring,
                                       currency=currency), info)

    def _canonical(self, sobject: str, name: str) -> str:
        info = self.field(sobject, name)
        return info.name if info else name

    # ------------------------------------------------------------------ owned fields
    def owned_status(self, stream: Stream) -> list[FieldStatus]:
        sobject = SOBJECT[stream]
        out = []
        for logical, api_name in owned_api_names(self.config, stream).items():
            info = self.field(sobject, api_name)
            out.append(FieldStatus(stream, logical, info.name if info else api_name,
                                   exists=info is not None,
                                   updateable=bool(info and info.updateable)))
        return out

    def writable(self, stream: Stream) -> dict[str, FieldInfo]:
        """Owned fields by logical name, with their describe; MissingFields if any is not
        there or not updateable (writing would only fail record by record)."""
        sobject = SOBJECT[stream]
        out: dict[str, FieldInfo] = {}
        bad: list[str] = []
        for logical, api_name in owned_api_names(self.config, stream).items():
            info = self.field(sobject, api_name)
            if info is None:
                bad.append(f"{sobject}.{api_name} does not exist (owned field {logical})")
            elif not info.updateable:
                bad.append(f"{sobject}.{info.name} is read-only for the integration user "
                           f"(owned field {logical})")
            else:
                out[logical] = info
        if bad:
            raise MissingFields("Salesforce: " + "; ".join(bad) + f"; {ENSURE_HINT}")
        return out
