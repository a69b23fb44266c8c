"""The `[crm.salesforce]` config section (sync.config composes it into the whole config).

It lives here, with the connector that reads it, so that connectors/ never imports sync/.
Every key is documented in config.example.toml.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class SalesforceConfig:
    enabled: bool = False
    name: str = "salesforce"
    auth: Literal["client_credentials", "jwt", "password", "session"] = "client_credentials"
    instance_url: str = ""
    login_url: str = "https://login.salesforce.com"
    api_version: str = "59.0"
    client_id: str = ""
    client_secret: str = ""
    username: str = ""
    password: str = ""
    security_token: str = ""
    private_key_file: str = ""
    session_id: str = ""
    ca_bundle: str = ""
    timeout_seconds: float = 30.0
    lookback_minutes: int = 10
    bulk_threshold: int = 10_000
    bulk_write_threshold: int = 10_000
    max_api_share: float = 0.5
    referring_partner_field: str = ""
    duns_field: str = ""
    account_fields: dict[str, str] = field(default_factory=dict)
    opportunity_fields: dict[str, str] = field(default_factory=dict)
