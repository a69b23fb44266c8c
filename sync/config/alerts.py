"""The `[[alerts]]` table: where co-sell signals go, which events, which filters.

Kept apart from the config package's composition (sync/config/__init__.py) so the alert
rules have one owner, and inside the config package so the config imports nothing of the
engine. The receiver's URL and the signing secret are credentials: the TOML must name an
environment variable (`"${NAME}"`) for them, never hold the value itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from sync.errors import ConfigError


class EventKind(StrEnum):
    NEW_ON_OPEN_OPPORTUNITY = "overlap.new_on_open_opportunity"
    PARTNER_CUSTOMER_ON_PROSPECT = "overlap.partner_customer_on_prospect"
    CLOSED_WITH_PARTNER = "opportunity.closed_with_partner"
    DEAD_LETTERS = "ops.dead_letters"
    API_BUDGET = "ops.api_budget"
    DIGEST_WEEKLY = "digest.weekly"
    TEST = "test"  # `ecosync alerts test`: never queued, never subscribed


SUBSCRIBABLE = tuple(e.value for e in EventKind if e is not EventKind.TEST)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DIGEST_MIN, DIGEST_MAX = 8, 15  # a working set (DESIGN.md 1)
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_ENV_ONLY = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")
CREDENTIAL_KEYS = ("webhook_url", "secret")


@dataclass(frozen=True)
class AlertConfig:
    name: str
    kind: Literal["slack", "webhook"]
    # Slack: the incoming webhook URL; webhook: the receiver's HTTPS endpoint. From ${ENV}.
    webhook_url: str = ""
    # webhook only: the HMAC-SHA256 key the receiver shares. From ${ENV}.
    secret: str = ""
    ca_bundle: str = ""  # extra CA certificates to trust (a private receiver); "" = system
    events: list[str] = field(default_factory=list)
    partners: list[str] = field(default_factory=list)  # only these partner ids; [] = all
    owners: list[str] = field(default_factory=list)  # only accounts these CRM users own
    min_amount: float = 0.0  # corporate currency; events carrying an amount below it drop
    dead_letters_threshold: int = 100
    api_budget_threshold: float = 0.8  # fraction of a CRM's daily API limit used
    digest_size: int = 12
    digest_weekday: Literal["monday", "tuesday", "wednesday", "thursday", "friday",
                            "saturday", "sunday"] = "monday"
    timeout_seconds: float = 5.0
    max_attempts: int = 10

    def wants(self, event: str) -> bool:
        return event in self.events


def check_credentials_from_env(raw: Mapping[str, Any], where: str) -> None:
    """Before interpolation: the URL and the secret must be `${NAME}` references."""
    alerts = raw.get("alerts")
    if not isinstance(alerts, list):
        return
    for i, entry in enumerate(alerts):
        if not isinstance(entry, dict):
            continue
        for key in CREDENTIAL_KEYS:
            value = entry.get(key)
            if isinstance(value, str) and value and not _ENV_ONLY.fullmatch(value.strip()):
                raise ConfigError(
                    f"{where}: key 'alerts[{i}].{key}' holds a credential in the file; put it "
                    f"in an environment variable and write \"${{NAME}}\" there instead")


def validate_alerts(alerts: Iterable[AlertConfig], where: str,
                    partner_ids: Iterable[str]) -> None:
    known_partners = set(partner_ids)
    seen: set[str] = set()
    for i, alert in enumerate(alerts):
        key = f"alerts[{i}]"

        def fail(sub: str, fix: str, key: str = key) -> None:
            raise ConfigError(f"{where}: key '{key}.{sub}' {fix}")

        if not _NAME.fullmatch(alert.name):
            fail("name", "must be 1-64 letters, digits, '_', '.' or '-'")
        if alert.name in seen:
            fail("name", f"duplicates alert name '{alert.name}'; names must be unique")
        seen.add(alert.name)
        if not alert.webhook_url:
            fail("webhook_url", "is required; set it to \"${NAME}\" of an environment "
                 "variable holding the receiver's https:// URL")
        if not alert.webhook_url.startswith("https://"):
            fail("webhook_url", "must be an https:// URL (check the environment variable)")
        if alert.kind == "webhook" and not alert.secret:
            fail("secret", "is required for kind = \"webhook\" (the HMAC-SHA256 key); set it "
                 "to \"${NAME}\" of an environment variable")
        if not alert.events:
            fail("events", f"is empty; list one or more of: {', '.join(SUBSCRIBABLE)}")
        for event in alert.events:
            if event not in SUBSCRIBABLE:
                fail("events", f"has unknown event '{event}'; use {', '.join(SUBSCRIBABLE)}")
        for pid in alert.partners:
            if pid not in known_partners:
                fail("partners", f"names partner '{pid}', which no [[partners]] entry has")
        if alert.min_amount < 0:
            fail("min_amount", "must be zero or more")
        if alert.dead_letters_threshold < 1:
            fail("dead_letters_threshold", "must be at least 1")
        if not 0 < alert.api_budget_threshold <= 1:
            fail("api_budget_threshold", "must be a fraction in (0, 1]")
        if not DIGEST_MIN <= alert.digest_size <= DIGEST_MAX:
            fail("digest_size", f"must be between {DIGEST_MIN} and {DIGEST_MAX} (a working set)")
        if not 0 < alert.timeout_seconds <= 30:
            fail("timeout_seconds", "must be more than 0 and at most 30")
        if alert.max_attempts < 1:
            fail("max_attempts", "must be at least 1")
