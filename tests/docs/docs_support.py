"""Reading docs/ for the "docs that run" tests: the `ecosync …` command lines, the links and
anchors, and a checker that resolves a command line against the real click tree."""

from __future__ import annotations

import re
import shlex
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click

from sync.cli import cli

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
DEPLOY = ROOT / "deploy"
# Ways the docs start an ecosync command: the command itself, the venv's binary, and the
# deploy/ecosync-admin wrapper, which passes its arguments to ecosync unchanged.
PREFIXES = ("ecosync", "/opt/ecosync/venv/bin/ecosync", "ecosync-admin")
SHELL_BLOCKS = {"", "sh", "bash", "shell", "console"}
_FENCE = re.compile(r"^```(\S*)\s*$")
_INLINE = re.compile(r"`([^`\n]+)`")
_PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_]*$|^<.*>$|^\.\.\.$|^…$")


@dataclass(frozen=True)
class CommandLine:
    where: str  # file:line
    text: str


def markdown_files() -> list[Path]:
    return sorted(DOCS.glob("**/*.md"))


def _starts_command(text: str) -> bool:
    return any(text == p or text.startswith(p + " ") for p in PREFIXES)


def command_lines(path: Path) -> Iterator[CommandLine]:
    """Every ecosync command in shell code blocks and in inline code spans of the prose."""
    fence: str | None = None
    pending = ""
    rel = path.relative_to(ROOT)
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        match = _FENCE.match(raw.strip())
        if match:
            fence = None if fence is not None else match.group(1)
            continue
        if fence is not None:
            if fence not in SHELL_BLOCKS:
                continue
            line = pending + raw.strip()
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            pending = ""
            line = line.removeprefix("$ ").removeprefix("# ").strip()
            if _starts_command(line):
                yield CommandLine(f"{rel}:{number}", line)
            continue
        for span in _INLINE.findall(raw):
            if _starts_command(span.strip()):
                yield CommandLine(f"{rel}:{number}", span.strip())


def _alternatives(tokens: list[str]) -> list[list[str]]:
    """`match pin|block` in prose means two commands."""
    out: list[list[str]] = [[]]
    for token in tokens:
        if "|" in token and not token.startswith("-"):
            out = [[*prefix, alt] for prefix in out for alt in token.split("|")]
        else:
            out = [[*prefix, token] for prefix in out]
    return out


def _options(command: click.Command) -> dict[str, click.Option]:
    found: dict[str, click.Option] = {}
    for param in command.params:
        if isinstance(param, click.Option):
            for name in (*param.opts, *param.secondary_opts):
                found[name] = param
    return found


def check_tokens(tokens: list[str]) -> tuple[list[str], list[str]]:
    """Resolve `tokens` (after `ecosync`) against the CLI. Returns the command path (for
    `--help`) and the problems: unknown subcommand, unknown option, a value outside an
    option's choices, too many arguments."""
    problems: list[str] = []
    command: click.Command = cli
    path: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        options = _options(command)
        if token.startswith("-"):
            name, _, inline_value = token.partition("=")
            option = options.get(name)
            if option is None and name != "--help":
                problems.append(f"{' '.join(['ecosync', *path])}: no option {name}")
            elif option is not None and not option.is_flag and not inline_value:
                value = tokens[i + 1] if i + 1 < len(tokens) else ""
                choices = getattr(option.type, "choices", None)
                if choices and not _PLACEHOLDER.match(value) and value not in choices:
                    problems.append(f"{name} {value!r} is not one of {list(choices)}")
                i += 1
            i += 1
            continue
        if isinstance(command, click.Group):
            sub = command.get_command(click.Context(command), token)  # lazy groups too
            if sub is None:
                problems.append(f"{' '.join(['ecosync', *path])}: no command {token!r}")
                return path, problems
            command = sub
            path.append(token)
            i += 1
            continue
        break
    rest = tokens[i:]
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    capacity = None if any(a.nargs == -1 for a in arguments) else sum(a.nargs for a in arguments)
    positional = 0
    j = 0
    while j < len(rest):
        token = rest[j]
        if token.startswith("-"):
            name, _, inline_value = token.partition("=")
            option = _options(command).get(name)
            if option is None and name != "--help":
                problems.append(f"{' '.join(['ecosync', *path])}: no option {name}")
            elif option is not None and not option.is_flag and not inline_value:
                value = rest[j + 1] if j + 1 < len(rest) else ""
                choices = getattr(option.type, "choices", None)
                if choices and not _PLACEHOLDER.match(value) and value not in choices:
                    problems.append(f"{name} {value!r} is not one of {list(choices)}")
                j += 1
        elif token not in ("...", "…"):
            positional += 1
        j += 1
    if capacity is not None and positional > capacity:
        problems.append(f"{' '.join(['ecosync', *path])} takes {capacity} argument(s), the "
                        f"docs give {positional}: {rest}")
    return path, problems


def parse_command(line: CommandLine) -> list[list[str]]:
    tokens = shlex.split(line.text, comments=True)
    return [alt[1:] for alt in _alternatives(tokens)]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = unicodedata.normalize("NFKC", heading.strip()).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    out: set[str] = set()
    in_fence = False
    for raw in path.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(raw.strip()):
            in_fence = not in_fence
            continue
        if not in_fence and raw.startswith("#"):
            out.add(slug(raw.lstrip("#")))
    return out


def headings(path: Path) -> set[str]:
    out: set[str] = set()
    in_fence = False
    for raw in path.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(raw.strip()):
            in_fence = not in_fence
            continue
        if not in_fence and raw.startswith("#"):
            out.add(raw.lstrip("#").strip())
    return out
