"""A running sandbox world: both CRM emulators loaded with seed data, partner CSV files on
disk, and the ecosync config that points at them. Used by `ecosync demo`,
`ecosync sandbox serve`, the end-to-end tests and the benchmarks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date
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

    def advance_clocks(self, seconds: float = 1.0) -> None:
        """Move both emulators' clocks forward: what a test would otherwise sleep for. A tick
        reads each CRM up to its clock (Salesforce in whole seconds), so after one second
        the records just written, by a test or by ecosync, fall inside the next tick."""
        for crm in (self.salesforce, self.hubspot):
            if crm is not None:
                crm.clock.advance(seconds)

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
    sf.load("User", data.sf_users)
    sf.load("Account", data.sf_accounts)
    sf.load("Opportunity", data.sf_opportunities)


def load_hubspot(hs: HubSpotSandbox, data: SeedData) -> None:
    for owner in data.hs_owners:
        hs.add_owner(owner["firstName"], owner["lastName"], owner["email"],
                     owner_id=owner["id"], archived=owner["archived"])
    hs.load("companies", ({"id": c["id"], **c["properties"]} for c in data.hs_companies))
    hs.load("deals", ({"id": d["id"], **d["properties"]} for d in data.hs_deals))
    for deal in data.hs_deals:
        if deal.get("company_id"):
            hs.associate(deal["id"], deal["company_id"], primary=True)


STATE_FILE = "sandbox-state.json"


@dataclass(frozen=True)
class SandboxState:
    """What `sandbox serve` keeps in its folder so a restart has the same URLs and tokens
    (the Salesforce credentials are fixed; HubSpot's tokens are drawn at random)."""

    salesforce_port: int = 0
    hubspot_port: int = 0
    hubspot_tokens: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: Path) -> SandboxState:
        path = directory / STATE_FILE
        if not path.exists():
            return cls()
        raw = json.loads(path.read_text(encoding="utf-8"))
        return cls(int(raw.get("salesforce_port", 0)), int(raw.get("hubspot_port", 0)),
                   {k: str(v) for k, v in (raw.get("hubspot_tokens") or {}).items()})

    @classmethod
    def of(cls, world: World) -> SandboxState:
        sf, hs = world.salesforce, world.hubspot
        return cls(_port(sf.url) if sf else 0, _port(hs.url) if hs else 0,
                   {k: getattr(hs.auth, k) for k in HS_TOKENS} if hs else {})

    def save(self, directory: Path) -> Path:
        path = directory / STATE_FILE
        path.touch(mode=0o600, exist_ok=True)  # tokens: readable by the owner only
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        return path


HS_TOKENS = ("access_token", "client_id", "client_secret", "refresh_token")


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


@contextmanager
def running_world(
    directory: Path, *, seed: int = 0, accounts: int = 300, opportunities: int = 600,
    partners: int = 3, salesforce: bool = True, hubspot: bool = True, latency_s: float = 0.0,
    data: SeedData | None = None, today: date | None = None,
    state: SandboxState | None = None,
) -> Iterator[World]:
    """Both emulators loaded with seed data (dates relative to `today`, default the real
    date); `state` gives them fixed ports and HubSpot tokens (OSError if a port is taken)."""
    directory.mkdir(parents=True, exist_ok=True)
    state = state or SandboxState()
    seeded = data or generate(seed=seed, accounts=accounts, opportunities=opportunities,
                              partners=partners, today=today)
    files = write_partner_csvs(seeded, directory / "partners")
    world = World(directory, seeded, files)
    with ExitStack() as stack:
        if salesforce:
            sf = SalesforceSandbox(latency_s=latency_s, seed=seed, tls_dir=directory / "tls-sf",
                                   port=state.salesforce_port)
            stack.enter_context(sf)
            load_salesforce(sf, seeded)
            world.salesforce = sf
        if hubspot:
            hs = HubSpotSandbox(latency_s=latency_s, fault_seed=seed,
                                directory=directory / "tls-hs", port=state.hubspot_port)
            for key, value in state.hubspot_tokens.items():
                if key in HS_TOKENS:
                    setattr(hs.auth, key, value)
            stack.enter_context(hs)
            load_hubspot(hs, seeded)
            world.hubspot = hs
        yield world
