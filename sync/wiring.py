"""Build the enabled CRM connectors from config: the one place sync/ wires connectors/ up.

Connector imports are lazy: a CRM you don't use costs nothing at start-up.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from connectors.base import Connector
from sync.config import Config
from sync.errors import ConfigError


def build_connectors(config: Config, source: str | None = None, *,
                     sleep: Callable[[float], None] | None = None) -> list[Connector]:
    """The enabled CRMs' connectors; `sleep` replaces their wait between retries (a test
    passes its sandbox clocks' advance, so a backoff takes no wall-clock time)."""
    out: list[Connector] = []
    wait: Callable[[float], None] = sleep or time.sleep
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

        out.append(SalesforceConnector(sf, sleep=wait))
    if hs.enabled and source in (None, hs.name):
        from connectors.hubspot import HubSpotConnector

        out.append(HubSpotConnector(hs, sleep=wait))
    return out
