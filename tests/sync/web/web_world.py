"""A warehouse for the web tests: five partners, one per sharing level (and a mixed one),
real matching and real stamps, runs and a dead letter.

`build(engine, unshared=True)` adds what must never show: a partner hidden in every
population and the hidden population of the mixed partner. Built without them, every page
and API answer must come out byte for byte the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from schema.models import (
    Account,
    ChangeLog,
    CrmOwner,
    Opportunity,
    Partner,
    PartnerAccount,
    PartnerPopulationCount,
    PsiRun,
    SyncRun,
    WritebackError,
)
from sync import dirty
from sync.attribution.stamp import stamp_closed
from sync.config import AttributionConfig, Config, MatchingConfig
from sync.dirty import Kind, Queue
from sync.matching.engine import rematch
from sync.matching.keys import normalize_name, registrable_domain
from sync.web.app import create_app

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TODAY = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
FULL = {"customer": "full", "open_opportunity": "full", "prospect": "full"}

# Partners by sharing level: (id, name, share)
PARTNERS = [
    ("p-full", "Fullmark", FULL),
    ("p-names", "Namewise", {"customer": "names", "open_opportunity": "names",
                             "prospect": "names"}),
    ("p-counts", "Countly", {"customer": "counts", "open_opportunity": "counts",
                             "prospect": "counts"}),
    ("p-mixed", "Mixo", {"customer": "counts", "open_opportunity": "names",
                         "prospect": "hidden"}),
]
HIDDEN = ("p-hidden", "Hiddenite", {"customer": "hidden", "open_opportunity": "hidden",
                                    "prospect": "hidden"})

# Our accounts: (external id, name, domain, owner, type)
ACCOUNTS = [
    ("001A", "Acme Corp", "acme.com", "005-ann", None),
    ("001B", "Bravo Ltd", "bravo.io", "005-bob", None),
    ("001C", "Cobalt Inc", "cobalt.dev", "005-ann", "Customer - Direct"),
    ("001D", "Delta GmbH", "delta.de", "005-bob", None),
    ("001E", "Echo SA", "echo.fr", "005-cyd", None),
    ("001F", "Foxtrot AB", "foxtrot.se", "005-cyd", None),
    ("001G", "=HYPERLINK(\"http://evil\") <script>x</script>", "golfclub.io", "005-ann",
     None),
    ("001H", "Hotel Plc", "hotel.co.uk", "005-bob", None),
]
# Billing countries as the CRM holds them (Bravo and Golf have none).
COUNTRIES = {"001A": "United States", "001C": "United States", "001D": "Germany",
             "001E": "France", "001F": "Sweden", "001H": "United Kingdom"}

# Our account owners as the CRM describes them (005-cyd's name was never read).
OUR_OWNERS = {"005-ann": ("Ann Archer", "ann.archer@ourco.example"),
              "005-bob": ("Bob Baker", "bob.baker@ourco.example")}

# Opportunities: (external id, account, status, amount, currency, created, close)
OPPORTUNITIES = [
    ("006A1", "001A", "open", "50000", "USD", date(2026, 2, 1), date(2026, 7, 30)),
    ("006A2", "001A", "won", "20000", "USD", date(2026, 1, 10), date(2026, 4, 10)),
    ("006B1", "001B", "open", "12000", "EUR", date(2026, 2, 15), date(2026, 8, 1)),
    ("006C1", "001C", "won", "30000", "USD", date(2026, 1, 20), date(2026, 5, 5)),
    ("006D1", "001D", "lost", "8000", "USD", date(2026, 2, 1), date(2026, 5, 20)),
    ("006E1", "001E", "won", "5000", "USD", date(2026, 1, 5), date(2026, 4, 20)),
    ("006F1", "001F", "open", "7000", "USD", date(2026, 3, 1), date(2026, 9, 1)),
    ("006H1", "001H", "won", "9000", "USD", date(2026, 1, 15), date(2026, 5, 1)),
]

# Partner rows shared with us: (partner, domain, population). Owners are named after the
# partner so a leak is easy to spot: "<Partner> Owner <n>", <partner>-owner<n>@partner.test.
ROWS = [
    ("p-full", "acme.com", "customer"),
    ("p-full", "bravo.io", "customer"),
    ("p-full", "cobalt.dev", "open_opportunity"),
    ("p-full", "golfclub.io", "prospect"),
    ("p-names", "acme.com", "customer"),
    ("p-names", "delta.de", "prospect"),
    ("p-names", "foxtrot.se", "customer"),
    ("p-counts", "acme.com", "open_opportunity"),
    ("p-counts", "echo.fr", "customer"),
    ("p-counts", "foxtrot.se", "customer"),
    ("p-mixed", "bravo.io", "open_opportunity"),
    ("p-mixed", "cobalt.dev", "customer"),
]
# Only in the world with unshared data. Hiddenite is credited alone on 006H1 and overlaps
# accounts with open pipeline; Mixo's hidden prospects sit on accounts without a close.
UNSHARED_ROWS = [
    ("p-hidden", "bravo.io", "customer"),
    ("p-hidden", "foxtrot.se", "customer"),
    ("p-hidden", "hotel.co.uk", "customer"),
    ("p-mixed", "foxtrot.se", "prospect"),
    ("p-mixed", "golfclub.io", "prospect"),
]
# Figures without names: (partner, their population, figure). Private matching: keys in
# common from the partner's latest finished run; exchange file: a population's size.
PSI_COUNTS = [("p-full", "customer", 3), ("p-counts", "open_opportunity", 2)]
FILE_COUNTS = [("p-names", "prospect", 120), ("p-counts", "customer", 40)]
# Only in the world with unshared data: a hidden partner's, and Mixo's hidden population.
UNSHARED_PSI_COUNTS = [("p-hidden", "customer", 7), ("p-mixed", "prospect", 5)]
UNSHARED_FILE_COUNTS = [("p-hidden", "customer", 99), ("p-mixed", "prospect", 55)]
# Added at the second match: the partner chart has a history.
LATER_ROWS = [("p-full", "foxtrot.se", "open_opportunity"), ("p-names", "echo.fr", "prospect")]

SECRET_STRINGS = ["Hiddenite", "p-hidden", "Countly", "p-counts", "hiddenite", "countly"]


def owner(partner_id: str, n: int) -> tuple[str, str]:
    name = partner_id.removeprefix("p-").title()
    return f"{name} Owner {n}", f"{name.lower()}-owner{n}@partner.test"


@dataclass
class Built:
    partners: list[str] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)
    owners_unshared: list[str] = field(default_factory=list)  # owner names/e-mails not full
    owners_shared: list[str] = field(default_factory=list)


def _partner_row(s: Session, pid: str, domain: str, population: str, n: int,
                 now: datetime, built: Built, share: dict[str, str]) -> None:
    name, email = owner(pid, n)
    s.add(PartnerAccount(
        partner_id=pid, row_key=domain, name=domain.split(".")[0].title(), domain=domain,
        domain_key=registrable_domain(domain), name_key=normalize_name(domain.split(".")[0]),
        population=population, owner_name=name, owner_email=email,
        imported_at=now, updated_at=now))
    if share.get(population) == "full":
        built.owners_shared += [name, email]
    else:
        built.owners_unshared += [name, email]


def build(engine: Engine, *, unshared: bool) -> Built:
    built = Built()
    partners = PARTNERS + ([HIDDEN] if unshared else [])
    shares = {pid: share for pid, _, share in partners}
    with Session(engine) as s, s.begin():
        for pid, name, share in partners:
            s.add(Partner(id=pid, name=name, kind="technology", source_kind="csv",
                          share=share, created_at=T0, updated_at=T0))
            built.partners.append(pid)
        for owner_id, (owner_name, email) in OUR_OWNERS.items():
            s.add(CrmOwner(source="salesforce", owner_id=owner_id, name=owner_name,
                           email=email, updated_at=T0))
        for ext, name, domain, owner_id, kind in ACCOUNTS:
            s.add(Account(source="salesforce", external_id=ext, name=name,
                          website=f"https://{domain}", domain_key=registrable_domain(domain),
                          name_key=normalize_name(name), owner_id=owner_id,
                          country=COUNTRIES.get(ext),
                          account_type=kind, modified_at=T0,
                          ingested_at=T0, created_at=T0))
            built.accounts.append(ext)
        for ext, acc, status, amount, cur, created, close in OPPORTUNITIES:
            s.add(Opportunity(
                source="salesforce", external_id=ext, account_external_id=acc,
                name=f"Deal {ext}", stage={"open": "Negotiation", "won": "Closed Won",
                                           "lost": "Closed Lost"}[status],
                status=status, amount=Decimal(amount), currency=cur, close_date=close,
                created_at=datetime.combine(created, datetime.min.time(), tzinfo=UTC),
                modified_at=T0, ingested_at=T0))
        s.flush()
        for n, (pid, domain, pop) in enumerate(ROWS):
            _partner_row(s, pid, domain, pop, n, T0, built, shares[pid])
        if unshared:
            for n, (pid, domain, pop) in enumerate(UNSHARED_ROWS, start=100):
                _partner_row(s, pid, domain, pop, n, T0, built, shares[pid])
    with Session(engine) as s, s.begin():
        rematch(s, MatchingConfig(), now=T0, full=True)
    later = T0 + timedelta(days=60)
    with Session(engine) as s, s.begin():
        for n, (pid, domain, pop) in enumerate(LATER_ROWS, start=50):
            _partner_row(s, pid, domain, pop, n, later, built, shares[pid])
        # Bravo leaves Fullmark's list: its overlap ends (history shows it).
        row = s.scalar(select(PartnerAccount).where(PartnerAccount.partner_id == "p-full",
                                                    PartnerAccount.row_key == "bravo.io"))
        assert row is not None
        s.delete(row)
        dirty.mark(s, Queue.MATCH, Kind.ACCOUNT,
                   select(Account.id).where(Account.external_id == "001B"))
    with Session(engine) as s, s.begin():
        rematch(s, MatchingConfig(), now=later, full=True)
    stamped_at = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
    with Session(engine) as s, s.begin():
        stamp_closed(s, AttributionConfig(static_rates={"EUR": 1.1}), now=stamped_at)
        run = SyncRun(kind="tick", status="failed", started_at=stamped_at,
                      ended_at=stamped_at + timedelta(seconds=40), heartbeat_at=stamped_at,
                      counts={"pulled.salesforce/accounts": 8, "written.salesforce/accounts": 3,
                              "failed.salesforce/accounts": 1},
                      api_calls={"salesforce": 12, "salesforce.daily_used": 1200,
                                 "salesforce.daily_limit": 15000},
                      error="salesforce: REQUEST_LIMIT_EXCEEDED; retry after midnight UTC")
        s.add(run)
        s.flush()
        s.add(WritebackError(source="salesforce", stream="accounts", external_id="001D",
                             payload={"Ecosystem_Overlap_Count__c": 1},
                             error_code="FIELD_CUSTOM_VALIDATION_EXCEPTION",
                             message="Overlap count must be < 10", attempts=3,
                             status="pending", first_failed_at=stamped_at,
                             last_failed_at=stamped_at, run_id=run.id,
                             next_retry_at=stamped_at + timedelta(hours=1)))
        s.add(ChangeLog(run_id=run.id, source="salesforce", stream="accounts",
                        external_id="001A", field="overlap_count", old_value="1",
                        new_value="3", written_at=stamped_at))
        psi = PSI_COUNTS + (UNSHARED_PSI_COUNTS if unshared else [])
        for n, pid in enumerate(sorted({pid for pid, _, _ in psi})):
            result = {pop: {"level": "counts", "domain": k, "duns": 0}
                      for q, pop, k in psi if q == pid}
            s.add(PsiRun(run_id=f"run{n}", role="requester", partner_id=pid, status="finished",
                         params={}, populations={"theirs": {p: "counts" for p in result}},
                         sizes={}, result=result, messages=[], created_at=stamped_at,
                         updated_at=stamped_at))
        files = FILE_COUNTS + (UNSHARED_FILE_COUNTS if unshared else [])
        for pid, pop, k in files:
            s.add(PartnerPopulationCount(partner_id=pid, population=pop, accounts=k,
                                         as_of=stamped_at, imported_at=stamped_at))
    return built


def client_for(engine: Engine, config: Config | None = None) -> TestClient:
    """The app in process, its clock at TODAY."""
    return TestClient(create_app(engine, config or Config(), clock=lambda: TODAY))
