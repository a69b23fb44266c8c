"""config.example.toml shows every key with the code's own default (issue 17.11): a user who
copies it gets what leaving the keys out would give, except where the example says it differs.

The exceptions are listed here, each with its reason; any other difference, or a key the
example leaves out, fails. The commented `# [[alerts]]` block is checked too.
"""

from __future__ import annotations

import re
import tomllib
import typing
from dataclasses import MISSING, fields, is_dataclass
from pathlib import Path
from typing import Any

from sync.config import INTERNAL_FIELDS, Config, PartnerConfig
from sync.config.alerts import AlertConfig

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"
ENV_REF = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")

# Keys whose example value is not the default, and why.
SHOWN_DIFFERENTLY = {
    "crm.salesforce.enabled": "the example turns the CRMs on; both are off by default",
    "crm.hubspot.enabled": "the example turns the CRMs on; both are off by default",
    "crm.salesforce.instance_url": "required by the auth mode shown; no default can fit",
}
# The example partner and alert: these keys illustrate; the others must show the defaults.
EXAMPLE_PARTNER = {"id", "name", "path", "columns", "share", "outbound"}
EXAMPLE_ALERT = {"name", "kind", "webhook_url", "events"}
ENTRIES = {"partners", "alerts"}  # lists of tables: the example holds one entry of each


def _default(f: Any) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return MISSING


def _differences(cls: type, shown: dict[str, Any], prefix: str,
                 illustrative: set[str] | frozenset[str] = frozenset()) -> list[str]:
    problems: list[str] = []
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        key = f"{prefix}{f.name}"
        if f.name in INTERNAL_FIELDS or f.name in illustrative or f.name in ENTRIES:
            continue  # ENTRIES: the example entries, checked on their own
        if f.name not in shown:
            problems.append(f"{key}: missing from the example")
            continue
        value, default = shown[f.name], _default(f)
        kind = hints[f.name]
        if is_dataclass(kind) and isinstance(kind, type):
            problems += _differences(kind, value, f"{key}.")
        elif key in SHOWN_DIFFERENTLY or (isinstance(value, str) and ENV_REF.match(value)):
            continue  # a listed exception, or a credential as "${NAME}"
        elif value != default:
            problems.append(f"{key}: the example shows {value!r}, the code's default is "
                            f"{default!r}")
    return problems


def _example() -> dict[str, Any]:
    return tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))


def _commented_alert() -> dict[str, Any]:
    """The `# [[alerts]]` block with its settings uncommented (its `# # ` lines stay comments)."""
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    start = lines.index("# [[alerts]]")
    body = []
    for line in lines[start + 1:]:
        if not line.startswith("# "):
            break
        if not line.startswith("# # "):
            body.append(line[2:])
    return tomllib.loads("\n".join(body))


def test_every_section_shows_the_codes_defaults() -> None:
    assert _differences(Config, _example(), "") == []


def test_the_example_partner_shows_the_defaults_of_what_it_does_not_illustrate() -> None:
    (partner,) = _example()["partners"]
    assert _differences(PartnerConfig, partner, "partners[0].", EXAMPLE_PARTNER) == []


def test_the_commented_alert_shows_the_defaults_of_what_it_does_not_illustrate() -> None:
    assert _differences(AlertConfig, _commented_alert(), "alerts[0].", EXAMPLE_ALERT) == []


def test_the_exceptions_are_real() -> None:
    """An exception nobody needs any more must go: each still differs from its default."""
    example = _example()
    for key in SHOWN_DIFFERENTLY:
        section, value = example, None
        for part in key.split("."):
            value = section[part]
            section = value if isinstance(value, dict) else section
        default = Config()
        for part in key.split("."):
            default = getattr(default, part)
        assert value != default, key
