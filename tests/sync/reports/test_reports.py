"""Overlap and account reports: figures, ordering, and sharing honoured."""

from __future__ import annotations

from decimal import Decimal

from matching_world import World
from sqlalchemy import update
from sqlalchemy.orm import Session

from schema.models import Account
from sync.reports.accounts import accounts_report
from sync.reports.formats import Column, csv_safe, render
from sync.reports.overlaps import COLUMNS, POOLED_NAME, overlaps_report
from sync.reports.overlaps import rows as overlap_rows


def _given_three_partners(world: World) -> None:
    world.partner("p-full", "Full Co")
    world.partner("p-mixed", "Mixed Co", {"customer": "counts", "open_opportunity": "names",
                                          "prospect": "hidden"})
    world.partner("p-hidden", "Hidden Co", {"customer": "hidden", "open_opportunity": "hidden",
                                            "prospect": "hidden"})
    world.account("A1", "Acme", "acme.com")
    world.account("A2", "Globex", "globex.com")
    world.account("A3", "Initech", "initech.com")
    world.opportunity("O1", "A1", status="won", amount="500")
    world.opportunity("O2", "A1", status="open", amount="1000")
    world.opportunity("O3", "A2", status="open", amount="2500")
    world.opportunity("O4", "A2", status="open", amount="500")
    world.partner_account("p-full", "Acme", "acme.com", "customer")
    world.partner_account("p-full", "Globex", "globex.com", "prospect")
    world.partner_account("p-mixed", "Acme", "acme.com", "customer")
    world.partner_account("p-mixed", "Globex", "globex.com", "open_opportunity")
    world.partner_account("p-mixed", "Initech", "initech.com", "prospect")
    for name in ("Acme", "Globex", "Initech"):
        world.partner_account("p-hidden", name, f"{name.lower()}.com", "customer")
    world.match()


def test_overlaps_report_by_population_and_our_status(world: World) -> None:
    _given_three_partners(world)
    with Session(world.engine) as s:
        rows = {r.partner: r for r in overlaps_report(s)}
    assert set(rows) == {"Full Co", "Mixed Co", POOLED_NAME}
    full = rows["Full Co"]
    assert full.by_population == {"customer": 1, "open_opportunity": 0, "prospect": 1}
    assert full.by_our_status == {"customer": 1, "open_pipeline": 1, "prospect": 0}
    mixed = rows["Mixed Co"]  # only its named population; the hidden prospect is absent
    assert mixed.by_population == {"customer": 0, "open_opportunity": 1, "prospect": 0}
    pooled = rows[POOLED_NAME]
    assert pooled.partner_id is None
    assert pooled.by_population == {"customer": 1, "open_opportunity": 0, "prospect": 0}


def test_accounts_report_ranks_by_shared_density_with_pipeline(world: World) -> None:
    _given_three_partners(world)
    with Session(world.engine) as s:
        rows = accounts_report(s)
    assert [(r.external_id, r.overlap_density) for r in rows] == [("A2", 2), ("A1", 2)]
    a2, a1 = rows
    assert a2.partners == "Mixed Co (open_opportunity); Full Co (prospect)"
    assert (a2.open_opportunities, a2.open_pipeline, a2.corporate_currency, a2.original) == (
        2, Decimal("3000"), "USD", "3000.00 USD")
    assert a1.partners == "Full Co (customer)"  # Mixed Co counts, unnamed; Hidden Co absent
    assert (a1.open_opportunities, a1.open_pipeline) == (1, Decimal("1000"))
    with Session(world.engine) as s:
        assert [r.external_id for r in accounts_report(s, min_density=3)] == []
        assert len(accounts_report(s, limit=1)) == 1


def test_hidden_partner_never_appears_in_any_format(world: World) -> None:
    _given_three_partners(world)
    from sync.reports import accounts, overlaps

    with Session(world.engine) as s:
        outputs = [
            render(overlaps.rows(overlaps_report(s)), overlaps.COLUMNS, fmt)
            + render(accounts.rows(accounts_report(s)), accounts.COLUMNS, fmt)
            for fmt in ("table", "csv", "json")
        ]
    for text in outputs:
        assert "Hidden Co" not in text
        assert "p-hidden" not in text
        assert "Mixed Co (customer)" not in text


def test_csv_neutralises_formula_cells() -> None:
    assert csv_safe("=HYPERLINK(\"http://x\")") == "'=HYPERLINK(\"http://x\")"
    assert csv_safe("+1 555") == "'+1 555"
    assert csv_safe("-cmd") == "'-cmd"
    assert csv_safe("@SUM(A1)") == "'@SUM(A1)"
    assert csv_safe("\t=1") == "'\t=1"
    assert csv_safe("Acme") == "Acme"
    assert csv_safe(-5) == "-5"
    assert csv_safe(Decimal("-1.50")) == "-1.50"
    assert csv_safe(None) == ""
    text = render([{"name": "=cmd|' /C calc'!A0", "n": 3}],
                  [Column("name", "Name"), Column("n", "N", numeric=True)], "csv")
    assert text.splitlines() == ["name,n", "'=cmd|' /C calc'!A0,3"]


def test_overlaps_report_counts_our_customers_by_the_rule_partners_see(world: World) -> None:
    # Our export and private matching call an account typed "Customer - Direct" in the CRM
    # a customer, even without a won deal: the report's "Our customers" must say the same,
    # or the two sides of an exchange disagree about which accounts are our customers.
    world.partner("p-full", "Full Co")
    world.account("A1", "Acme", "acme.com")
    world.account("A2", "Globex", "globex.com")
    world.opportunity("O2", "A2", status="open", amount="100")
    with Session(world.engine) as s, s.begin():
        s.execute(update(Account).where(Account.external_id.in_(["A1", "A2"]))
                  .values(account_type="Customer - Direct"))
    world.partner_account("p-full", "Acme", "acme.com", "customer")
    world.partner_account("p-full", "Globex", "globex.com", "customer")
    world.match()
    with Session(world.engine) as s:
        (row,) = overlaps_report(s)
    assert row.by_our_status == {"customer": 2, "open_pipeline": 0, "prospect": 0}
    text = render(overlap_rows([row]), COLUMNS, "csv", to_terminal=False)
    assert text.splitlines()[1].split(",")[5:8] == ["2", "0", "0"]
