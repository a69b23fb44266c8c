"""Two ecosync installs in one test: each a migrated warehouse with its own accounts, config
and pending-state directory, driven through the real request / respond / finish functions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from schema.db import transaction
from schema.models import Overlap, PartnerAccount
from schema.records import AccountRecord, OpportunityRecord, OpportunityStatus, Stream
from sync.config import Config, parse_config
from sync.ingest import land_records
from sync.matching.engine import rematch
from sync.psi.requester import FinishResult, RequestResult, finish, request
from sync.psi.responder import RespondResult, respond

T0 = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)
ALL_NAMES = {"customer": "names", "open_opportunity": "names", "prospect": "names"}


@dataclass
class Side:
    """One install: `org` is its name, `peer_id` its [[partners]] id for the other side."""

    org: str
    engine: Engine
    tmp: Path
    peer_id: str
    peer_name: str
    outbound: dict[str, str]
    share: dict[str, str] = field(default_factory=lambda: {
        "customer": "full", "open_opportunity": "full", "prospect": "full"})
    psi: dict[str, Any] = field(default_factory=lambda: {"min_set_size": 3})
    now: datetime = T0
    _n: int = 0

    @property
    def config(self) -> Config:
        return parse_config({
            "warehouse": {"url": "sqlite://"},
            "psi": {"organisation": self.org, "state_dir": str(self.tmp / "state"),
                    **self.psi},
            "partners": [{"id": self.peer_id, "name": self.peer_name, "source": "psi",
                          "outbound": self.outbound, "share": self.share}],
        }, where=f"<{self.org} config>")

    def tick(self) -> datetime:
        self.now += timedelta(minutes=5)
        return self.now

    def accounts(self, population: str, websites: Iterable[str | None], *,
                 duns: Iterable[str | None] | None = None, owner: str | None = None) -> None:
        """Accounts of one of OUR populations: customer (a won deal), open_opportunity (an
        open deal) or prospect (none)."""
        sites = list(websites)
        numbers = list(duns) if duns is not None else [None] * len(sites)
        accounts, opps = [], []
        for site, number in zip(sites, numbers, strict=True):
            self._n += 1
            ext = f"{self.org[:3].upper()}{self._n:05d}"
            accounts.append(AccountRecord(
                source="salesforce", external_id=ext, modified_at=self.now,
                name=f"{site or number} account", website=site, duns=number,
                owner_id=owner or f"005OWNER{self._n:05d}",
                owner_name=f"Rep {self._n:05d}",
                owner_email=f"rep{self._n:05d}@{self.org.lower()}.example"))
            if population != "prospect":
                status = (OpportunityStatus.WON if population == "customer"
                          else OpportunityStatus.OPEN)
                opps.append(OpportunityRecord(
                    source="salesforce", external_id=f"OPP{ext}", modified_at=self.now,
                    account_external_id=ext, name="deal", status=status,
                    amount=Decimal("1000"), currency="USD"))
        with transaction(self.engine) as session:
            land_records(session, Stream.ACCOUNTS, accounts, now=self.now)
            if opps:
                land_records(session, Stream.OPPORTUNITIES, opps, now=self.now)

    def request(self, out: Path, **kw: Any) -> RequestResult:
        with transaction(self.engine) as session:
            return request(session, self.config, self.peer_id, out, now=self.tick(), **kw)

    def respond(self, inp: Path, out: Path, **kw: Any) -> RespondResult:
        with transaction(self.engine) as session:
            return respond(session, self.config, inp, out, now=self.tick(), **kw)

    def finish(self, inp: Path, **kw: Any) -> FinishResult:
        with transaction(self.engine) as session:
            return finish(session, self.config, inp, now=self.tick(), **kw)

    def match(self) -> None:
        with transaction(self.engine) as session:
            rematch(session, self.config.matching, now=self.tick())

    def partner_rows(self) -> set[tuple[str, str | None, str | None]]:
        """(population, domain key, DUNS) of every row the peer's runs landed."""
        with Session(self.engine) as s:
            return {(r.population, r.domain_key, r.duns) for r in s.scalars(
                select(PartnerAccount).where(PartnerAccount.partner_id == self.peer_id))}

    def owners(self) -> dict[str, str | None]:
        return {k: name for k, (name, _) in self.contacts().items()}

    def contacts(self) -> dict[str, tuple[str | None, str | None]]:
        """(owner name, owner e-mail) the peer's runs landed, per domain key or DUNS."""
        with Session(self.engine) as s:
            return {r.domain_key or r.duns or "": (r.owner_name, r.owner_email)
                    for r in s.scalars(select(PartnerAccount)
                                       .where(PartnerAccount.partner_id == self.peer_id))}

    def overlaps(self) -> set[tuple[str, str, str]]:
        """(our account external id, method, their population) of every active overlap."""
        from schema.models import Account

        with Session(self.engine) as s:
            rows = s.execute(select(Account.external_id, Overlap.method, Overlap.population)
                             .join(Account, Account.id == Overlap.account_id)
                             .where(Overlap.ended_at.is_(None))).all()
        return {(a, m, p) for a, m, p in rows}


SHARE = {"customer": "full", "open_opportunity": "counts", "prospect": "names"}

# The known world. Keys both sides hold, by (Acme's population, Globex's population):
BOTH_CUSTOMERS = [f"https://www.shared-customer-{i}.com/about" for i in range(5)]
BOTH_PROSPECTS = ["shared-prospect-0.co.uk", "http://shared-prospect-1.io",
                  "münchen-shared.de"]
BOTH_OPEN = [f"shared-open-{i}.net" for i in range(4)]  # counts only, on both sides
# One company on both sides under different websites but the same DUNS number.
DUNS_A = ("acme-side-name.com", "12-345-6789")
DUNS_B = ("globex-side-name.com", "123456789")
ACME_ONLY = [f"acme-only-{i}.com" for i in range(12)] + ["zürich-acme-only.ch"]
GLOBEX_ONLY = [f"globex-only-{i}.org" for i in range(12)] + ["köln-globex-only.de"]


def build(side: Side, mine: list[str]) -> None:
    side.accounts("customer", [*BOTH_CUSTOMERS, DUNS_A[0] if side.org == "Acme"
                               else DUNS_B[0]],
                  duns=[None] * 5 + [DUNS_A[1] if side.org == "Acme" else DUNS_B[1]])
    side.accounts("prospect", BOTH_PROSPECTS)
    side.accounts("open_opportunity", BOTH_OPEN)
    side.accounts("prospect", mine[:6])
    side.accounts("customer", mine[6:9])
    side.accounts("open_opportunity", mine[9:])


def run_both_ways(acme: Side, globex: Side, tmp: Path) -> dict[str, Any]:
    files: dict[str, Any] = {}
    for me, peer, tag in ((acme, globex, "a"), (globex, acme, "g")):
        req, resp = tmp / f"{tag}-req.psi", tmp / f"{tag}-resp.psi"
        me.request(req)
        peer.respond(req, resp)
        done = me.finish(resp)
        files[tag] = [req, resp]
        if done.contacts_request is not None:
            answer = tmp / f"{tag}-contacts.psi"
            peer.respond(done.contacts_request, answer)
            me.finish(answer)
            files[tag] += [done.contacts_request, answer]
        files[f"{tag}-finish"] = done
    return files
