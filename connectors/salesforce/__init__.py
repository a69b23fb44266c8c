"""The Salesforce connector (simple-salesforce); the class is in connector.py.

The package itself imports nothing heavy, so loading the config (which imports
connectors.salesforce.config) does not pull in simple-salesforce.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connectors.salesforce.connector import SalesforceConnector

__all__ = ["SalesforceConnector"]


def __getattr__(name: str) -> Any:
    if name == "SalesforceConnector":
        from connectors.salesforce.connector import SalesforceConnector

        return SalesforceConnector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
