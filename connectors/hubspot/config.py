"""The `[crm.hubspot]` config section (sync.config composes it into the whole config).

It lives here, with the connector that reads it, so that connectors/ never imports sync/.
Every key is documented in config.example.toml.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class HubSpotConfig:
    enabled: bool = False
    name: str = "hubspot"
    auth: Literal["private_app", "oauth"] = "private_app"
    base_url: str = "https://api.hubapi.com"
    access_token: str = ""
    client_id: str = ""
    client_secret: str = ""
    refresh_token: str = ""
    ca_bundle: str = ""
    timeout_seconds: float = 30.0
    lookback_minutes: int = 5
    search_requests_per_second: float = 4.0
    max_burst_share: float = 0.5
    max_api_share: float = 0.5
    referring_partner_property: str = ""
    lead_source_property: str = ""
    duns_property: str = ""
    company_properties: dict[str, str] = field(default_factory=dict)
    deal_properties: dict[str, str] = field(default_factory=dict)
