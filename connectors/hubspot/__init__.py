"""HubSpot CRM connector: companies and deals through hubspot-api-client (see BEHAVIOR.md)."""

from connectors.hubspot.connector import HubSpotConnector

__all__ = ["HubSpotConnector"]
