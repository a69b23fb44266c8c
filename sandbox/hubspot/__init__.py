"""A wire-faithful emulator of the HubSpot CRM API (see README.md in this package)."""

from sandbox.hubspot.auth import HubSpotFaults
from sandbox.hubspot.clock import Clock
from sandbox.hubspot.limits import RateLimits
from sandbox.hubspot.server import HubSpotSandbox
from sandbox.hubspot.store import Rec, WriteLogEntry

__all__ = ["Clock", "HubSpotFaults", "HubSpotSandbox", "RateLimits", "Rec", "WriteLogEntry"]
