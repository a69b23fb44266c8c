"""Builders and assertions shared by the HubSpot sandbox tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def error_body(exc: Any) -> dict[str, Any]:
    """The decoded JSON body of any hubspot-api-client ApiException."""
    body: dict[str, Any] = json.loads(exc.body)
    return body


def companies(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {"name": f"Company {i}", "domain": f"company{i}.example.com",
         "website": f"https://www.company{i}.example.com", "lifecyclestage":
         ("customer", "lead", "opportunity")[i % 3]}
        for i in range(start, start + n)
    ]
