"""A hubspot-api-client pointed at a sandbox, for tests, benchmarks and the demo."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hubspot import HubSpot
from urllib3.util.retry import Retry

if TYPE_CHECKING:
    from sandbox.hubspot.server import HubSpotSandbox


def hubspot_client(
    sandbox: HubSpotSandbox, token: str | None = None, retry: Retry | bool = False,
    **config: Any,
) -> HubSpot:
    """A real ``hubspot.HubSpot`` talking to ``sandbox`` over TLS that trusts its CA.

    hubspot-api-client builds a fresh ``Configuration`` for every sub-API from these keyword
    arguments, so ``host`` and ``ssl_ca_cert`` reach each one. ``retry=False`` switches off
    urllib3's own retries (it would otherwise re-send GETs answered 429/503 with a
    ``Retry-After``), so tests see every response the sandbox gives.
    """
    return HubSpot(
        access_token=token or sandbox.access_token,
        host=sandbox.url,
        ssl_ca_cert=str(sandbox.ca_file),
        retry=retry,
        **config,
    )
