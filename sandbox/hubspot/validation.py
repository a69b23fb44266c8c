"""Property value validation: what HubSpot accepts for each property type, and its errors."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from sandbox.hubspot.clock import iso, parse_time, to_ms
from sandbox.hubspot.schema import PropertyDef

Props = dict[str, str | None]


class PropertyError(ValueError):
    """A write named properties that do not exist, are read-only or hold invalid values."""

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(p["message"] for p in problems))
        self.problems = problems


def wire_value(value: Any) -> str | None:
    """Every property value is a string (or null) in HubSpot, whatever its type."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return iso(to_ms(value))
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def validate(
    defs: Mapping[str, PropertyDef], values: Mapping[str, Any], *, allow_read_only: bool = False
) -> Props:
    """Normalised string values, or PropertyError listing every invalid property."""
    problems: list[dict[str, Any]] = []
    out: Props = {}
    for name, raw in values.items():
        value = wire_value(raw)
        prop = defs.get(name)
        if prop is None:
            problems.append(_problem(name, "PROPERTY_DOESNT_EXIST",
                                     f'Property "{name}" does not exist'))
            continue
        if prop.read_only_value and not allow_read_only:
            problems.append(_problem(name, "READ_ONLY_VALUE",
                                     f'"{name}" is a read only property; '
                                     "its value cannot be set."))
            continue
        checked = _check_value(prop, value)
        if isinstance(checked, dict):
            problems.append(checked)
        else:
            out[name] = checked
    if problems:
        raise PropertyError(problems)
    return out


def _problem(name: str, code: str, message: str) -> dict[str, Any]:
    return {"isValid": False, "message": message, "error": code, "name": name,
            "localizedErrorMessage": message}


def _check_value(prop: PropertyDef, value: str | None) -> str | dict[str, Any] | None:
    """The stored form of a value, or a problem dict. An empty string clears the property."""
    if value is None or value == "":
        return None
    if prop.type == "number":
        try:
            float(value)
        except ValueError:
            return _problem(prop.name, "INVALID_INTEGER",
                            f"{value!r} was not a valid number.")
        return value
    if prop.type == "bool":
        if value.lower() not in ("true", "false"):
            return _problem(prop.name, "INVALID_BOOLEAN", f"{value!r} is not a valid boolean.")
        return value.lower()
    if prop.type in ("datetime", "date"):
        ms = parse_time(value)
        if ms is None:
            return _problem(prop.name, "INVALID_DATE", f"{value!r} is not a valid date.")
        return iso(ms)
    if prop.type == "enumeration" and prop.options:
        allowed = {o["value"] for o in prop.options}
        chosen = value.split(";") if prop.field_type == "checkbox" else [value]
        bad = [v for v in chosen if v not in allowed]
        if bad:
            return _problem(prop.name, "INVALID_OPTION",
                            f"{bad[0]} was not one of the allowed options: "
                            f"[{', '.join(sorted(allowed))}]")
    return value


