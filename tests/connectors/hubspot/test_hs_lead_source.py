"""HubSpot lead source (issue 14.4): `crm.hubspot.lead_source_property` feeds attribution's
`sourced_lead_sources` rule, as Salesforce's LeadSource does: through the real tick, from the
emulated portal to the stamp and back to the deal's `sourcing_partner` property."""

from __future__ import annotations

from pathlib import Path

from hs_support import connector_for
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from sandbox.hubspot import HubSpotSandbox
from schema.models import AttributionStamp, Opportunity
from sync.config import AttributionConfig, Config, CrmConfig, PartnerConfig
from sync.tick import TickOptions, run_tick


def test_given_a_partner_lead_source_when_the_deal_closes_then_the_partner_is_sourcing(
    sandbox: HubSpotSandbox, warehouse: Engine, tmp_path: Path
) -> None:
    sandbox.define_property("deals", "lead_source")
    (company,) = sandbox.load("companies", [{"name": "Acme", "domain": "acme.example.com"}])
    partner_file = tmp_path / "northbeam.csv"
    partner_file.write_text("external_id,name,domain,population\n"
                            "NB-1,Acme Inc,acme.example.com,customer\n", encoding="utf-8")
    connector = connector_for(sandbox, lead_source_property="lead_source")
    config = Config(
        crm=CrmConfig(hubspot=connector.config),
        attribution=AttributionConfig(sourced_lead_sources=["Partner Referral"]),
        partners=[PartnerConfig(id="northbeam", name="Northbeam", path=str(partner_file))])
    connector.ensure_fields(check_only=False)
    assert connector.check() == []
    # The overlap with Northbeam begins with this first tick.
    run_tick(warehouse, config, [connector], now=sandbox.clock.now(),
             options=TickOptions(backfill=True, kind="backfill"))

    sandbox.clock.advance(3600)  # the deal is created after the overlap began
    (deal,) = sandbox.load("deals", [{"dealname": "Acme expansion", "amount": "5000",
                                      "lead_source": "partner referral"}])
    sandbox.associate(deal, company)
    sandbox.clock.advance(60)
    sandbox.close_deal(deal, won=True)
    sandbox.clock.advance(60)
    run_tick(warehouse, config, [connector], now=sandbox.clock.now())

    with Session(warehouse) as session:
        opp = session.scalars(select(Opportunity).where(Opportunity.external_id == deal)).one()
        stamp = session.scalars(select(AttributionStamp).where(
            AttributionStamp.opportunity_id == opp.id)).one()
    assert opp.lead_source == "partner referral"
    assert (stamp.sourcing_partner_id, stamp.sourced_rule) == (
        "northbeam", "lead_source_earliest_overlap")
    written = sandbox.get("deals", deal)
    assert written["sourcing_partner"] == "Northbeam"
    assert written["partner_influenced"] == "true"


def test_given_a_lead_source_property_that_does_not_exist_then_check_names_the_key(
    sandbox: HubSpotSandbox,
) -> None:
    connector = connector_for(sandbox, lead_source_property="lead_sauce")
    connector.ensure_fields(check_only=False)
    problems = connector.check()
    assert any("crm.hubspot.lead_source_property = 'lead_sauce'" in p for p in problems)
