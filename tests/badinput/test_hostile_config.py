"""Hostile configs through `ecosync config check`: exit 0, or exit 2 with exactly one line
naming the problem. Never a traceback, whatever the TOML holds."""

from __future__ import annotations

import json
import math
import tomllib
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sync.cli import cli

# No warehouse involved: CI's PostgreSQL pass would only repeat these.
pytestmark = pytest.mark.sqlite_only

EXAMPLE = tomllib.loads((Path(__file__).resolve().parents[2] / "config.example.toml")
                        .read_text(encoding="utf-8"))


def _sections(doc: dict[str, Any], prefix: str = "") -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in doc.items():
        if isinstance(value, dict) and key not in ("share", "columns", "static_rates",
                                                   "population_weights"):
            out.update(_sections(value, f"{prefix}{key}."))
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            out[f"{prefix}{key}[]"] = sorted(value[0])
        else:
            out.setdefault(prefix.rstrip("."), []).append(key)
    return out


SECTIONS = _sections(EXAMPLE)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}"
                                for k, v in value.items()) + " }"
    raise TypeError(type(value))


scalars = st.one_of(
    st.text(max_size=30), st.integers(-(2**63), 2**63 - 1), st.floats(), st.booleans(),
    st.datetimes(timezones=st.just(UTC)), st.dates(),
    st.sampled_from(["${NOT_SET_ANYWHERE}", "${}", "sqlite:///:memory:", "", "full", "hidden",
                     "oauth", "jwt", "csv", "utf-16", "nope", "-1", "0"]),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=10), inner, max_size=3)),
    max_leaves=6)


@st.composite
def configs(draw: st.DrawFn) -> str:
    lines: list[str] = []
    for section in draw(st.lists(st.sampled_from(sorted(SECTIONS)), max_size=4, unique=True)):
        known = SECTIONS[section]
        keys = draw(st.lists(st.one_of(st.sampled_from(known), st.from_regex(
            r"[a-z_]{1,12}", fullmatch=True)), max_size=5, unique=True))
        header = f"[[{section[:-2]}]]" if section.endswith("[]") else (
            f"[{section}]" if section else "")
        if header:
            lines.append(header)
        for key in keys:
            lines.append(f"{json.dumps(key)} = {toml_value(draw(values))}")
    return "\n".join(lines) + "\n"


def check(tmp_path: Path, text: str | bytes) -> Result:
    path = tmp_path / "ecosync.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return CliRunner().invoke(cli, ["--config", str(path), "config", "check"],
                              env={"ECOSYNC_CONFIG": None}, catch_exceptions=True)


def assert_clean_outcome(result: Result) -> None:
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        repr(result.exception), result.output)
    assert result.exit_code in (0, 2), (result.exit_code, result.output)
    event(f"exit {result.exit_code}")
    if result.exit_code == 2:
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1, result.output
        assert lines[0].startswith("error:"), result.output


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=configs())
def test_any_toml_structure_is_accepted_or_refused_in_one_line(
    tmp_path: Path, text: str
) -> None:
    # Some drawn files are not even TOML (a duplicate key, say): still files a user can write.
    assert_clean_outcome(check(tmp_path, text))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes_as_config_are_refused_in_one_line(tmp_path: Path, raw: bytes) -> None:
    assert_clean_outcome(check(tmp_path, raw))


@pytest.mark.parametrize("text", [
    "a = " + "[" * 50_000 + "]" * 50_000 + "\n",  # RecursionError inside tomllib
    "a = " + "{ b = " * 50_000 + "1" + " }" * 50_000 + "\n",
    "[" + ".".join(["w"] * 100_000) + "]\nx = 1\n",  # tomllib: memory quadratic in parts
    ".".join(['"q"'] * 100_000) + " = 1\n",
    "[warehouse]\nurl = " + "[" * 900 + "1" + "]" * 900 + "\n",  # parsed; deep for our walk
], ids=["arrays", "inline-tables", "table-header", "dotted-key", "deep-value"])
def test_a_deeply_nested_config_is_refused_in_one_line(tmp_path: Path, text: str) -> None:
    """systemd restarts ecosync on every exit code but 2: a traceback (exit 1) would
    crash-loop the daemon on a config it can never read."""
    result = check(tmp_path, text)
    assert result.exit_code == 2, (result.exit_code, result.output[-500:])
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output[-500:]
    assert "deeply" in result.output or "dotted parts" in result.output or \
        "must be" in result.output, result.output
