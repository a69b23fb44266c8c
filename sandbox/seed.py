"""Deterministic seed data: a Salesforce org, a HubSpot portal and partner lists with ground truth.

`generate(seed, today=...)` always returns the same data for the same arguments (one
`random.Random`, no network, no clock). Dates are relative to `today` (default: the real
date), so the default report periods (this quarter, the trailing four) hold data whenever the
sandbox is started: records were created over the four years before it, a share of the closed
deals closed this quarter, open deals close after it. Tests pass a fixed `today`. Records are
plain dicts in each CRM's own field names, ready for the emulators' `load()`; partner lists
are CSV row dicts with the default column names of `ecosync partners import`.

Ground truth (`truth`, `truth_population`) follows DESIGN.md section 4 exactly: a domain match
when both sides have a usable registrable domain, an exact normalized-name match only when a
side lacks one, the strongest population per (account, partner). `truth_fuzzy` holds the pairs
that only fuzzy name matching can find (typos); they are also in `truth`, so a run without
fuzzy matching is scored against `truth - truth_fuzzy`. Names are unique up to token order,
and near-identical decoys are only made where both sides have a domain, so the fuzzy rule
finds `truth_fuzzy` and almost nothing else (random companies a typo apart are rare: about one
pair in a few thousand).

    python -m sandbox.seed --accounts 60000 --opportunities 120000 --partners 4 \
        --partner-accounts 5000      # prints counts and the time taken
"""

from __future__ import annotations

import argparse
import csv
import random
import time as clock
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

from sandbox import seed_names as words
from sandbox.seed_world import (
    POPULATION_FORMS,
    AccountFacts,
    Company,
    Row,
    TruthKey,
    World,
    ground_truth,
)
from schema.records import Population

# A share of the closed deals close in the current quarter (up to today), so that quarter's
# reports show data even on its first day.
RECENT_CLOSE_SHARE = 0.12
PARTNER_COLUMNS = ("external_id", "name", "domain", "website", "population", "owner_name",
                   "owner_email")
SF_STAGES = (  # (StageName, IsClosed, IsWon, weight)
    ("Prospecting", False, False, 14), ("Qualification", False, False, 12),
    ("Proposal/Price Quote", False, False, 10), ("Negotiation/Review", False, False, 8),
    ("Closed Won", True, True, 28), ("Closed Lost", True, False, 28),
)
HS_STAGES = (  # (dealstage, closed, weight)
    ("appointmentscheduled", False, 10), ("qualifiedtobuy", False, 10),
    ("presentationscheduled", False, 8), ("decisionmakerboughtin", False, 8),
    ("contractsent", False, 6), ("closedwon", True, 29), ("closedlost", True, 29),
)
SF_TYPES = (("Customer", 35), ("Prospect", 40), ("Partner", 5), (None, 20))
OUR_EMAIL_DOMAIN = "ourco.example"  # our reps' addresses (a reserved name: never delivered)
# Billing countries as reps type them (None: left blank), weighted like a US-led software
# vendor's book.
COUNTRIES = (
    ("United States", 42), ("United Kingdom", 10), ("Germany", 8), ("Canada", 6),
    ("France", 6), ("Australia", 4), ("Netherlands", 4), ("Japan", 3), ("Spain", 3),
    ("Brazil", 2), ("India", 2), ("Sweden", 2), ("Singapore", 1), (None, 7),
)
HS_LIFECYCLE = (("customer", 30), ("opportunity", 15), ("salesqualifiedlead", 15),
                ("lead", 25), ("subscriber", 5), ("other", 5), (None, 5))
LEAD_SOURCES = (("Partner Referral", 14), ("Web", 30), ("Phone Inquiry", 10),
                ("Trade Show", 8), ("Other", 8), (None, 30))
CURRENCIES = (("USD", 70), ("EUR", 15), ("GBP", 10), ("AUD", 5))
PARTNER_CATALOG = (
    ("Acme Cloud", "technology"), ("Northbeam Consulting", "services"),
    ("Vantage Resellers", "channel"), ("Helios Data", "technology"),
    ("Bluebird Integrations", "services"), ("Kite Channel Group", "channel"),
    ("Orion Security", "technology"), ("Juniper Advisory", "services"),
)
# Share policies exercising DESIGN.md section 5: all shown; one population hidden; counts only.
SHARE_POLICIES: tuple[Mapping[str, str], ...] = (
    {"customer": "full", "open_opportunity": "full", "prospect": "full"},
    {"customer": "names", "open_opportunity": "full", "prospect": "hidden"},
    {"customer": "counts", "open_opportunity": "names", "prospect": "full"},
    {"customer": "full", "open_opportunity": "counts", "prospect": "hidden"},
)
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHECK = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


@dataclass(frozen=True, slots=True)
class SeedPartner:
    id: str
    name: str
    kind: str
    share: Mapping[str, str]
    # The third partner's list has no external_id column, like many real exports.
    has_external_ids: bool = True

    def config(self) -> dict[str, Any]:
        """A `[[partners]]` table for this partner (pass `path` for its CSV)."""
        return {"id": self.id, "name": self.name, "kind": self.kind, "source": "csv",
                "share": dict(self.share)}


@dataclass(frozen=True)
class SeedData:
    sf_accounts: list[dict[str, Any]]
    sf_opportunities: list[dict[str, Any]]
    hs_companies: list[dict[str, Any]]
    hs_deals: list[dict[str, Any]]
    partners: list[SeedPartner]
    partner_rows: dict[str, list[dict[str, str]]]
    truth: frozenset[TruthKey]
    truth_population: Mapping[TruthKey, Population]
    truth_fuzzy: frozenset[TruthKey]
    # The users our accounts are assigned to: Salesforce User rows, HubSpot owners.
    sf_users: list[dict[str, Any]] = field(default_factory=list)
    hs_owners: list[dict[str, Any]] = field(default_factory=list)

    @property
    def record_count(self) -> int:
        return (len(self.sf_accounts) + len(self.sf_opportunities) + len(self.hs_companies)
                + len(self.hs_deals) + sum(len(r) for r in self.partner_rows.values()))


def sf_id(prefix: str, number: int) -> str:
    """An 18-character Salesforce id: 15 case-sensitive characters and the case checksum."""
    digits = []
    for _ in range(9):
        number, rem = divmod(number, 62)
        digits.append(_B62[rem])
    return sf_id18(f"{prefix}5E0{''.join(reversed(digits))}")


def sf_id18(id15: str) -> str:
    """Append Salesforce's case checksum: one letter per 5 characters, encoding which of them
    are upper case (so ids survive case-insensitive tools)."""
    suffix = ""
    for chunk in range(3):
        flags = sum(1 << i for i, c in enumerate(id15[chunk * 5:chunk * 5 + 5]) if c.isupper())
        suffix += _CHECK[flags]
    return id15 + suffix


def hs_time(moment: datetime) -> str:
    """HubSpot's wire format: ISO 8601 UTC with milliseconds and a Z."""
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def _weighted(rng: random.Random, table: tuple[tuple[Any, int], ...]) -> Any:
    return rng.choices([v for v, _ in table], [w for _, w in table])[0]


def _slug(name: str) -> str:
    return "-".join(name.lower().split())


def _partners(count: int) -> list[SeedPartner]:
    out = []
    for i in range(count):
        name, kind = PARTNER_CATALOG[i % len(PARTNER_CATALOG)]
        if i >= len(PARTNER_CATALOG):
            name = f"{name} {i // len(PARTNER_CATALOG) + 1}"
        out.append(SeedPartner(f"p-{_slug(name)}", name, kind,
                               MappingProxyType(dict(SHARE_POLICIES[i % len(SHARE_POLICIES)])),
                               has_external_ids=i % 3 != 2))
    return out


def _created(rng: random.Random, earliest: datetime, latest: datetime) -> datetime:
    span = int((latest - earliest).total_seconds())
    return earliest + timedelta(seconds=rng.randrange(max(span, 1)),
                                milliseconds=rng.randrange(1000))


def _amount(rng: random.Random) -> float | None:
    if rng.random() < 0.05:
        return None
    return float(round(rng.lognormvariate(9.5, 1.1), -2) or 500.0)


def reference_now(today: date | None) -> datetime:
    """Midnight UTC of `today` (default: the real date): the seeded world's "now"."""
    return datetime.combine(today or datetime.now(UTC).date(), time(), tzinfo=UTC)


def _close_date(rng: random.Random, created: datetime, closed: bool, now: datetime,
                recent: random.Random) -> date:
    """`recent`, a generator of its own, moves a share of the closes into this quarter:
    the main stream draws the same numbers whatever the day, so the rest of the world
    (names, domains, partner lists) is the same for a seed on any day."""
    today = now.date()
    if closed:
        latest = min(created + timedelta(days=240), now - timedelta(days=1))
        close = _created(rng, created, max(latest, created + timedelta(days=1))).date()
        if recent.random() < RECENT_CLOSE_SHARE:
            quarter = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
            start = max(quarter, created.date())
            close = start + timedelta(days=recent.randrange((today - start).days + 1))
        return close
    return (now + timedelta(days=rng.randrange(5, 270))).date()


def _referral(rng: random.Random, lead_source: str | None,
              partners: list[SeedPartner]) -> str | None:
    """Which partner a rep typed into the referral field: an id, or a name in any case."""
    if not partners or rng.random() > (0.7 if lead_source == "Partner Referral" else 0.02):
        return None
    partner = rng.choice(partners)
    form = rng.random()
    if form < 0.4:
        return partner.id
    if form < 0.6:
        return partner.name
    return partner.name.upper() if form < 0.8 else partner.name.lower()


def _account_site(world: World, company: Company) -> tuple[str | None, bool]:
    usable = world.rng.random() < 0.8
    return world.surface(company, usable), usable


def generate(seed: int = 0, accounts: int = 1000, opportunities: int = 2000,
             partners: int = 3, partner_accounts: int | None = None,
             today: date | None = None) -> SeedData:
    """Generate a whole seeded world. `accounts` and `opportunities` are totals over both CRMs;
    `partner_accounts` is rows per partner (default accounts // 5, at least 20); dates are
    relative to `today` (default: the real date)."""
    now = reference_now(today)
    recent = random.Random(f"recent-closes-{seed}")
    rng = random.Random(seed)
    world = World(rng)
    n_sf = (accounts * 11 + 19) // 20
    n_hs = accounts - n_sf
    n_shared = min(n_sf, n_hs // 5)  # HubSpot companies that also exist in Salesforce
    per_partner = max(20, accounts // 5) if partner_accounts is None else partner_accounts
    ours = [world.company() for _ in range(n_sf + n_hs - n_shared)]
    pool = [world.company() for _ in range(max(per_partner, 20) if partners else 0)]
    earliest = now - timedelta(days=4 * 365)
    latest = now - timedelta(days=30)
    facts: list[AccountFacts] = []
    sf_owners = [sf_id("005", 1000 + i) for i in range(12)]
    hs_owners = [str(40_000_000 + i * 7919) for i in range(10)]
    # Attributes added later draw from their own stream, so the rest of a seed stays as it was.
    extra = random.Random(seed * 7919 + 17)
    sf_users, hs_owner_rows = _users(extra, sf_owners, hs_owners)

    sf_accounts: list[dict[str, Any]] = []
    for i, company in enumerate(ours[:n_sf]):
        site, usable = _account_site(world, company)
        account_id = sf_id("001", 50_000 + i)
        sf_accounts.append({
            "Id": account_id, "Name": words.display_variant(rng, company.name),
            "Website": site, "OwnerId": rng.choice(sf_owners),
            "Type": _weighted(rng, SF_TYPES), "CreatedDate": _created(rng, earliest, latest),
            "BillingCountry": _weighted(extra, COUNTRIES),
        })
        facts.append(AccountFacts("salesforce", account_id, company, usable))
        if not usable:
            world.name_matched.add(id(company))

    hs_source = rng.sample(ours[:n_sf], n_shared) + ours[n_sf:]
    hs_companies: list[dict[str, Any]] = []
    for i, company in enumerate(hs_source):
        site, usable = _account_site(world, company)
        # HubSpot's `domain` is a bare host when set; `website` agrees with it, so whichever
        # field a connector prefers gives the same match key.
        domain = company.domain if usable and rng.random() < 0.6 else None
        company_id = str(9_000_000_000 + i * 13 + 1)
        hs_companies.append({"id": company_id, "properties": {
            "name": words.display_variant(rng, company.name), "domain": domain,
            "website": site, "hubspot_owner_id": rng.choice(hs_owners),
            "lifecyclestage": _weighted(rng, HS_LIFECYCLE),
            "createdate": hs_time(_created(rng, earliest, latest)),
            "country": _weighted(extra, COUNTRIES),
        }})
        facts.append(AccountFacts("hubspot", company_id, company, usable))
        if not usable:
            world.name_matched.add(id(company))

    seed_partners = _partners(partners)
    n_sf_opps = (opportunities * n_sf) // accounts if accounts else 0
    sf_opportunities = _sf_opportunities(rng, sf_accounts, n_sf_opps, seed_partners, sf_owners,
                                         now, recent)
    hs_deals = _hs_deals(rng, hs_companies, opportunities - n_sf_opps if hs_companies else 0,
                         seed_partners, now, recent)

    rows: dict[str, list[Row]] = {}
    partner_rows: dict[str, list[dict[str, str]]] = {}
    for index, partner in enumerate(seed_partners):
        rows[partner.id] = world.partner_rows(ours, pool, per_partner)
        partner_rows[partner.id] = _csv_rows(rng, partner, index, rows[partner.id])
    population, fuzzy = ground_truth(facts, rows)
    return SeedData(
        sf_accounts=sf_accounts, sf_opportunities=sf_opportunities,
        hs_companies=hs_companies, hs_deals=hs_deals, partners=seed_partners,
        partner_rows=partner_rows, truth=frozenset(population),
        truth_population=MappingProxyType(population), truth_fuzzy=frozenset(fuzzy),
        sf_users=sf_users, hs_owners=hs_owner_rows,
    )


def _users(rng: random.Random, sf_ids: list[str],
           hs_ids: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Our sales reps: Salesforce Users and HubSpot owners (one of each left the company:
    an inactive user, a deactivated owner, whose accounts still name them)."""
    people: set[tuple[str, str]] = set()

    def person() -> tuple[str, str, str]:
        while True:
            first, last = rng.choice(words.FIRST_NAMES), rng.choice(words.SURNAMES)
            if (first, last) not in people:
                people.add((first, last))
                return first, last, f"{first.lower()}.{last.lower()}@{OUR_EMAIL_DOMAIN}"

    users = []
    for i, user_id in enumerate(sf_ids):
        first, last, email = person()
        users.append({"Id": user_id, "FirstName": first, "LastName": last, "Email": email,
                      "Username": email, "IsActive": i != len(sf_ids) - 1})
    owners = []
    for i, owner_id in enumerate(hs_ids):
        first, last, email = person()
        owners.append({"id": owner_id, "firstName": first, "lastName": last, "email": email,
                       "archived": i == len(hs_ids) - 1})
    return users, owners


def _sf_opportunities(rng: random.Random, accounts: list[dict[str, Any]], count: int,
                      partners: list[SeedPartner], owners: list[str], now: datetime,
                      recent: random.Random) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    stages = tuple((s[:3], s[3]) for s in SF_STAGES)
    for i in range(count):
        account = accounts[int(len(accounts) * rng.random() ** 1.5)]  # some accounts busier
        stage, closed, won = _weighted(rng, stages)
        created = _created(rng, account["CreatedDate"], now - timedelta(days=2))
        lead_source = _weighted(rng, LEAD_SOURCES)
        out.append({
            "Id": sf_id("006", 70_000 + i), "AccountId": account["Id"],
            "Name": f"{account['Name']} - {rng.choice(words.PRODUCTS)} {created.year}",
            "StageName": stage, "IsClosed": closed, "IsWon": won, "Amount": _amount(rng),
            "CurrencyIsoCode": _weighted(rng, CURRENCIES),
            "CloseDate": _close_date(rng, created, closed, now, recent), "CreatedDate": created,
            "LeadSource": lead_source, "OwnerId": rng.choice(owners),
            "Referring_Partner__c": _referral(rng, lead_source, partners),
        })
    return out


def _hs_deals(rng: random.Random, companies: list[dict[str, Any]], count: int,
              partners: list[SeedPartner], now: datetime,
              recent: random.Random) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    stages = tuple((s[:2], s[2]) for s in HS_STAGES)
    for i in range(count):
        company = companies[int(len(companies) * rng.random() ** 1.5)]
        stage, closed = _weighted(rng, stages)
        company_created = datetime.strptime(
            company["properties"]["createdate"], "%Y-%m-%dT%H:%M:%S.%fZ"
        ).replace(tzinfo=UTC)
        created = _created(rng, company_created, now - timedelta(days=2))
        amount = _amount(rng)
        close = _close_date(rng, created, closed, now, recent)
        lead_source = _weighted(rng, LEAD_SOURCES)
        out.append({"id": str(20_000_000_000 + i * 7 + 3), "company_id": company["id"],
                    "properties": {
            "dealname": f"{company['properties']['name']} - {rng.choice(words.PRODUCTS)}",
            "dealstage": stage, "pipeline": "default",
            "amount": None if amount is None else f"{amount:.2f}",
            "deal_currency_code": _weighted(rng, CURRENCIES),
            "closedate": f"{close.isoformat()}T00:00:00.000Z", "createdate": hs_time(created),
            "referring_partner": _referral(rng, lead_source, partners),
        }})
    return out


def _csv_rows(rng: random.Random, partner: SeedPartner, index: int,
              rows: list[Row]) -> list[dict[str, str]]:
    email_domain = f"{partner.id.removeprefix('p-').replace('-', '')}.example.com"
    out: list[dict[str, str]] = []
    for n, row in enumerate(rows):
        owner_name, owner_email = words.person(rng, email_domain)
        if rng.random() < 0.15:
            owner_name, owner_email = "", ""
        surface = row.surface or ""
        if surface and rng.random() < 0.05:
            surface = f" {surface} "  # stray spaces from spreadsheet exports
        url_like = "/" in surface or ":" in surface
        record = {
            "name": row.name or "",
            "domain": "" if url_like else surface,
            "website": surface if url_like else "",
            "population": rng.choice(POPULATION_FORMS[row.population]),
            "owner_name": owner_name, "owner_email": owner_email,
        }
        if partner.has_external_ids:
            record = {"external_id": f"{partner.id[2:4].upper()}{index}-{n + 1:06d}", **record}
        out.append(record)
    return out


def write_partner_csvs(data: SeedData, directory: Path) -> dict[str, Path]:
    """Write one CSV per partner (UTF-8; every other one with a BOM, as Excel saves them)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for index, partner in enumerate(data.partners):
        path = directory / f"{partner.id}.csv"
        columns = [c for c in PARTNER_COLUMNS
                   if c != "external_id" or partner.has_external_ids]
        encoding = "utf-8-sig" if index % 2 else "utf-8"
        with path.open("w", encoding=encoding, newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            writer.writerows(data.partner_rows[partner.id])
        paths[partner.id] = path
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Generate seed data and report its size.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--opportunities", type=int, default=2000)
    parser.add_argument("--partners", type=int, default=3)
    parser.add_argument("--partner-accounts", type=int, default=None)
    parser.add_argument("--csv-dir", type=Path, default=None)
    parser.add_argument("--today", type=date.fromisoformat, default=None,
                        help="Dates relative to this day (default: today), e.g. 2026-03-31.")
    args = parser.parse_args(argv)
    started = clock.perf_counter()
    data = generate(args.seed, args.accounts, args.opportunities, args.partners,
                    args.partner_accounts, today=args.today)
    elapsed = clock.perf_counter() - started
    print(f"{data.record_count} records in {elapsed:.2f} s: "
          f"{len(data.sf_accounts)} SF accounts, {len(data.sf_opportunities)} opportunities, "
          f"{len(data.hs_companies)} HS companies, {len(data.hs_deals)} deals, "
          f"{sum(len(r) for r in data.partner_rows.values())} partner rows; "
          f"{len(data.truth)} true overlaps ({len(data.truth_fuzzy)} fuzzy)")
    if args.csv_dir is not None:
        for partner_id, path in write_partner_csvs(data, args.csv_dir).items():
            print(f"{partner_id}: {path}")


if __name__ == "__main__":
    main()
