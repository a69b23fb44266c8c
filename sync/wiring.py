"""Build the enabled CRM connectors from config: the one place sync/ wires connectors/ up.

Connector imports are lazy: a CRM you don't use costs nothing at start-up.
"""

from __future__ import annotations

from connectors.base import Connector
from sync.config import Config
from sync.errors import ConfigError


def build_connectors(config: Config, source: str | None = None) -> list[Connector]:
    out: list[Connector] = []
    sf, hs = config.crm.salesforce, config.crm.hubspot
    names = {sf.name: sf.enabled, hs.name: hs.enabled}
    if source is not None and not names.get(source):
        enabled = [n for n, on in names.items() if on] or ["none"]
        raise ConfigError(
            f"--source {source!r} is not an enabled CRM source; enabled: {', '.join(enabled)} "
            "(enable it under [crm.salesforce] or [crm.hubspot])"
        )
    if sf.enabled and source in (None, sf.name):
        from connectors.salesforce import SalesforceConnector

        out.append(SalesforceConnector(sf))
    if hs.enabled and source in (None, hs.name):
        from connectors.hubspot import HubSpotConnector

        out.append(HubSpotConnector(hs))
    return out
