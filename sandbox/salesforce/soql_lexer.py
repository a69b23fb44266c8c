"""SOQL tokens and the error shape of the real API (MALFORMED_QUERY with a caret line)."""

from __future__ import annotations

import re
from dataclasses import dataclass


class SoqlError(Exception):
    """A query the API refuses: carries the errorCode (MALFORMED_QUERY, INVALID_FIELD, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<dt>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:?\d{2}))
    | (?P<date>\d{4}-\d{2}-\d{2})(?![\d:T])
    | (?P<num>-?\d+(?:\.\d+)?)
    | (?P<str>'(?:[^'\\]|\\.)*')
    | (?P<op><>|!=|<=|>=|=|<|>)
    | (?P<punct>[(),])
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
    )""",
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "'": "'", '"': '"', "\\": "\\"}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str
    pos: int

    @property
    def upper(self) -> str:
        return self.text.upper()


def tokenize(soql: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(soql):
        if soql[pos:].strip() == "":
            break
        m = _TOKEN.match(soql, pos)
        if not m or m.lastgroup is None:
            start = len(soql) - len(soql[pos:].lstrip())
            raise malformed(soql, start, f"unexpected token: '{soql[start:].split()[0]}'")
        tokens.append(Token(m.lastgroup, m.group(m.lastgroup), m.start(m.lastgroup)))
        pos = m.end()
    tokens.append(Token("eof", "", len(soql)))
    return tokens


def caret_message(soql: str, pos: int) -> str:
    """The '\\n<query>\\n   ^\\nERROR at Row:1:Column:N\\n' preamble real errors carry."""
    line = soql.replace("\n", " ")
    return f"\n{line}\n{' ' * pos}^\nERROR at Row:1:Column:{pos + 1}\n"


def malformed(soql: str, pos: int, msg: str) -> SoqlError:
    return SoqlError("MALFORMED_QUERY", caret_message(soql, pos) + msg)


# ----------------------------------------------------------------------------- AST


def unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)
