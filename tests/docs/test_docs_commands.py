"""Docs that run: every `ecosync …` command line in docs/ is a real command of the CLI
(subcommand exists, options exist, choices valid) and its `--help` parses; links and anchors
between the guides resolve; doctor's fixes point at commands and guide sections that exist."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path
from types import ModuleType

import pytest
from click.testing import CliRunner
from docs_support import (
    DOCS,
    ROOT,
    CommandLine,
    anchors,
    check_tokens,
    command_lines,
    headings,
    markdown_files,
    parse_command,
)

from sync import doctor
from sync.cli import cli

GUIDES = ["salesforce-admin.md", "hubspot-admin.md", "partner-data.md", "attribution.md",
          "operations.md"]
ALL_LINES = [line for path in markdown_files() for line in command_lines(path)]


@pytest.fixture(autouse=True)
def _no_local_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The root group loads ./ecosync.toml or $ECOSYNC_CONFIG before any --help.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ECOSYNC_CONFIG", raising=False)


def test_every_guide_exists_and_has_commands() -> None:
    for name in GUIDES:
        assert (DOCS / name).is_file(), name
    by_file = {line.where.split(":")[0] for line in ALL_LINES}
    for name in GUIDES:
        assert f"docs/{name}" in by_file, f"docs/{name} shows no ecosync command"
    assert len(ALL_LINES) > 60


@pytest.mark.parametrize("line", ALL_LINES, ids=lambda line: line.where)
def test_a_documented_command_is_a_real_command(line: CommandLine) -> None:
    for tokens in parse_command(line):
        path, problems = check_tokens(tokens)
        assert problems == [], f"{line.where}: `{line.text}`: {problems}"
        result = CliRunner().invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, f"{line.where}: `{line.text}`: {result.output}"
        assert "Usage: " in result.output


@pytest.mark.parametrize("text", [
    "ecosync partners import PARTNER FILE --skip-invalid",
    "ecosync report attribution --section revenue --format csv",
    "ecosync match pin|block ACCOUNT PARTNER --reason WHY",
    "ecosync --log-format json run",
])
def test_the_checker_accepts_real_commands(text: str) -> None:
    for tokens in parse_command(CommandLine("t", text)):
        assert check_tokens(tokens)[1] == []


@pytest.mark.parametrize(("text", "problem"), [
    ("ecosync partners remove p-x", "no command 'remove'"),
    ("ecosync doctor --verbose", "no option --verbose"),
    ("ecosync doctor --format yaml", "'yaml' is not one of"),
    ("ecosync db upgrade head", "takes 0 argument(s)"),
    ("ecosync match pin|unpin A P --reason x", "no command 'unpin'"),
])
def test_the_checker_rejects_invented_commands(text: str, problem: str) -> None:
    found = [p for tokens in parse_command(CommandLine("t", text)) for p in check_tokens(tokens)[1]]
    assert any(problem in p for p in found), found


_LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_links_between_the_docs_resolve() -> None:
    problems = []
    for path in [*markdown_files(), ROOT / "README.md"]:
        for target in _LINK.findall(path.read_text(encoding="utf-8")):
            if re.match(r"^[a-z]+://", target) or target.startswith("mailto:"):
                continue
            file_part, _, anchor = target.partition("#")
            resolved = (path.parent / file_part).resolve() if file_part else path
            if not resolved.exists():
                problems.append(f"{path.name}: {target}: no such file")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                problems.append(f"{path.name}: {target}: no heading with that anchor")
    assert problems == []


def test_readme_links_every_guide() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "## Guides" in readme
    for name in GUIDES:
        assert f"(docs/{name})" in readme, name


def test_config_example_points_to_the_guides_for_crm_side_steps() -> None:
    example = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    for name in ("docs/salesforce-admin.md", "docs/hubspot-admin.md", "docs/partner-data.md",
                 "docs/attribution.md", "docs/operations.md"):
        assert name in example, name
    for guide, anchor in re.findall(r"(docs/[a-z-]+\.md)#([a-z0-9-]+)", example):
        assert anchor in anchors(ROOT / guide), f"config.example.toml: {guide}#{anchor}"


_GUIDE_REF = re.compile(r"(docs/[a-z-]+\.md), '([^']+)'")
_COMMAND = re.compile(r"`(ecosync [^`]+)`")


def _doctor_strings() -> list[str]:
    """Every string literal of the sync/doctor package as it renders, each module's constants
    substituted (adjacent literals are already joined by the parser)."""
    out = []
    for path in sorted(Path(doctor.__file__).parent.glob("*.py")):
        module = importlib.import_module(f"sync.doctor.{path.stem}" if path.stem != "__init__"
                                         else "sync.doctor")
        out += _strings(ast.parse(path.read_text(encoding="utf-8")), module)
    return out


def _strings(tree: ast.Module, module: ModuleType) -> list[str]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.append(node.value)
        elif isinstance(node, ast.JoinedStr):
            parts = []
            for value in node.values:
                if isinstance(value, ast.Constant):
                    parts.append(str(value.value))
                elif (isinstance(value, ast.FormattedValue) and isinstance(value.value, ast.Name)
                      and isinstance(getattr(module, value.value.id, None), str)):
                    parts.append(getattr(module, value.value.id))
                else:
                    parts.append("{}")
            out.append("".join(parts))
    return out


def test_doctor_fixes_name_real_commands_and_guide_sections() -> None:
    strings = _doctor_strings()
    refs = {ref for text in strings for ref in _GUIDE_REF.findall(text)}
    assert len(refs) >= 8, refs
    for guide, section in refs:
        assert section in headings(ROOT / guide), f"{guide} has no section '{section}'"
    commands = {c.replace("{}", "NAME") for text in strings for c in _COMMAND.findall(text)}
    assert "ecosync db upgrade" in commands
    for text in commands:
        for tokens in parse_command(CommandLine("doctor", text)):
            assert check_tokens(tokens)[1] == [], text


_KEY = re.compile(r"\b(warehouse|daemon|logging|matching|attribution|crm\.salesforce|"
                  r"crm\.hubspot)\.([a-z_]+)")


def test_every_config_key_the_docs_name_exists() -> None:
    from dataclasses import fields

    from sync.config import Config

    config = Config()
    sections = {"warehouse": config.warehouse, "daemon": config.daemon,
                "logging": config.logging, "matching": config.matching,
                "attribution": config.attribution, "crm.salesforce": config.crm.salesforce,
                "crm.hubspot": config.crm.hubspot}
    known = {name: {f.name for f in fields(section)} for name, section in sections.items()}
    problems = []
    for path in [*markdown_files(), *Path(ROOT / "deploy").rglob("*")]:
        if path.is_dir() or path.suffix in (".csv",):
            continue
        for section, key in _KEY.findall(path.read_text(encoding="utf-8")):
            if key not in known[section] and key != "md":  # attribution.md is a file
                problems.append(f"{path.relative_to(ROOT)}: {section}.{key}")
    assert problems == []
