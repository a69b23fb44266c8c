"""HubSpot CRM connector: companies and deals through hubspot-api-client (see BEHAVIOR.md).

The package itself imports nothing heavy, so loading the config (which imports
connectors.hubspot.config) does not pull in hubspot-api-client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connectors.hubspot.connector import HubSpotConnector

__all__ = ["HubSpotConnector"]


def __getattr__(name: str) -> Any:
    if name == "HubSpotConnector":
        from connectors.hubspot.connector import HubSpotConnector

        return HubSpotConnector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
