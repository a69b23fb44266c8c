"""A running sandbox world: both CRM emulators loaded with seed data, partner CSV files on
disk, and the ecosync config that points at them. Used by `ecosync demo`,
`ecosync sandbox serve`, the end-to-end tests and the benchmarks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.hubspot import HubSpotSandbox
from sandbox.salesforce import SalesforceSandbox
from sandbox.seed import SeedData, generate, write_partner_csvs
from sync.config import Config, parse_config

# Environment variable names the generated config refers to (secrets never sit in the file).
ENV_SF_SECRET = "ECOSYNC_SANDBOX_SF_CLIENT_SECRET"
ENV_HS_TOKEN = "ECOSYNC_SANDBOX_HUBSPOT_TOKEN"


@dataclass
class World:
    directory: Path
    seed: SeedData
    partner_files: dict[str, Path]
    salesforce: SalesforceSandbox | None = None
    hubspot: HubSpotSandbox | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        out = {}
        if self.salesforce:
            out[ENV_SF_SECRET] = self.salesforce.client_secret
        if self.hubspot:
            out[ENV_HS_TOKEN] = self.hubspot.access_token
        return out

    def config_toml(self, warehouse_url: str, *, crms: bool = True) -> str:
        """The ecosync config for this world (`crms=False`: warehouse and partners only, for
        the reports once the emulators have stopped)."""
        lines = ["[warehouse]", f'url = "{warehouse_url}"', ""]
        if self.salesforce and crms:
            sf = self.salesforce
            lines += [
                "[crm.salesforce]", "enabled = true", 'auth = "client_credentials"',
                f'instance_url = "{sf.url}"', f'login_url = "{sf.url}"',
                f'client_id = "{sf.client_id}"', f'client_secret = "${{{ENV_SF_SECRET}}}"',
                f'ca_bundle = "{sf.ca_file}"', 'referring_partner_field = "Referring_Partner__c"',
                "",
            ]
        if self.hubspot and crms:
            hs = self.hubspot
            lines += [
                "[crm.hubspot]", "enabled = true", 'auth = "private_app"',
                f'base_url = "{hs.url}"', f'access_token = "${{{ENV_HS_TOKEN}}}"',
                f'ca_bundle = "{hs.ca_file}"', 'referring_partner_property = "referring_partner"',
                "",
            ]
        lines += ["[attribution]", 'sourced_lead_sources = ["Partner Referral"]', ""]
        for partner in self.seed.partners:
            share = ", ".join(f'{pop} = "{level}"' for pop, level in partner.share.items())
            lines += [
                "[[partners]]", f'id = "{partner.id}"', f'name = "{partner.name}"',
                f'kind = "{partner.kind}"', 'source = "csv"',
                f'path = "{self.partner_files[partner.id]}"', f"share = {{ {share} }}", "",
            ]
        return "\n".join(lines)

    def config(self, warehouse_url: str) -> Config:
        import tomllib

        return parse_config(tomllib.loads(self.config_toml(warehouse_url)), "<sandbox>",
                            self.env())


def load_salesforce(sf: SalesforceSandbox, data: SeedData) -> None:
    sf.load("Account", data.sf_accounts)
    sf.load("Opportunity", data.sf_opportunities)


def load_hubspot(hs: HubSpotSandbox, data: SeedData) -> None:
    hs.load("companies", ({"id": c["id"], **c["properties"]} for c in data.hs_companies))
    hs.load("deals", ({"id": d["id"], **d["properties"]} for d in data.hs_deals))
    for deal in data.hs_deals:
        if deal.get("company_id"):
            hs.associate(deal["id"], deal["company_id"], primary=True)


@contextmanager
def running_world(
    directory: Path, *, seed: int = 0, accounts: int = 300, opportunities: int = 600,
    partners: int = 3, salesforce: bool = True, hubspot: bool = True, latency_s: float = 0.0,
    data: SeedData | None = None,
) -> Iterator[World]:
    directory.mkdir(parents=True, exist_ok=True)
    seeded = data or generate(seed=seed, accounts=accounts, opportunities=opportunities,
                              partners=partners)
    files = write_partner_csvs(seeded, directory / "partners")
    world = World(directory, seeded, files)
    with ExitStack() as stack:
        if salesforce:
            sf = SalesforceSandbox(latency_s=latency_s, seed=seed, tls_dir=directory / "tls-sf")
            stack.enter_context(sf)
            load_salesforce(sf, seeded)
            world.salesforce = sf
        if hubspot:
            hs = HubSpotSandbox(latency_s=latency_s, fault_seed=seed,
                                directory=directory / "tls-hs")
            stack.enter_context(hs)
            load_hubspot(hs, seeded)
            world.hubspot = hs
        yield world
