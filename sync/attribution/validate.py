"""Start-up checks of the `[attribution]` rules that the generic config loader cannot know.

`attribution_problems` returns one message per problem, each naming the key and the fix, so
`ecosync config check` and the daemon's start-up can refuse a config that would stamp
nonsense (stamps are immutable: a wrong rule is expensive to undo).
"""

from __future__ import annotations

import re

from sync.config import AttributionConfig

_ISO = re.compile(r"^[A-Za-z]{3}$")


def attribution_problems(config: AttributionConfig) -> list[str]:
    out: list[str] = []
    if not _ISO.match(config.corporate_currency):
        out.append(f"attribution.corporate_currency '{config.corporate_currency}' must be a "
                   "three-letter ISO 4217 code such as USD")
    for code, rate in config.static_rates.items():
        if not _ISO.match(code):
            out.append(f"attribution.static_rates.{code} is not a three-letter ISO 4217 code")
        if not rate > 0:
            out.append(f"attribution.static_rates.{code} must be a positive rate "
                       f"(units of {config.corporate_currency} per one {code})")
    for i, source in enumerate(config.sourced_lead_sources):
        if not source.strip():
            out.append(f"attribution.sourced_lead_sources[{i}] is blank; remove it")
    if config.amount_model == "population_weighted" and not any(
            w > 0 for w in config.population_weights.values()):
        out.append("attribution.population_weights are all zero; population_weighted needs "
                   "at least one positive weight (or use amount_model = \"even\")")
    return out
