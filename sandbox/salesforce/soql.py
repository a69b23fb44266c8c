"""A SOQL parser and evaluator for the subset ecosync uses, failing the way the real API fails.

Supported: field lists (with child-to-parent paths such as ``Account.Website``), ``COUNT()``,
WHERE with AND/OR/NOT and parentheses (mixing AND and OR without parentheses is rejected, as
Salesforce rejects it), ``= != <> < <= > >=``, ``IN``/``NOT IN``, ``LIKE``, string, number,
boolean, null, date and datetime literals; ORDER BY (ASC/DESC, NULLS FIRST/LAST); LIMIT; OFFSET.
The WHERE clause compiles to one Python expression (see Parser.condition); `evaluate.py` runs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sandbox.salesforce import schema
from sandbox.salesforce.predicates import Getter, compare, getter, key_of, like_regex
from sandbox.salesforce.schema import FieldDef
from sandbox.salesforce.soql_lexer import (
    SoqlError,
    Token,
    caret_message,
    malformed,
    tokenize,
    unquote,
)
from sandbox.salesforce.store import Store, id18

__all__ = ["Getter", "Query", "SoqlError", "getter", "parse"]


@dataclass(slots=True)
class Query:
    soql: str
    object: str
    fields: list[str]  # canonical paths, in SELECT order ("Id", "Account.Website")
    count: bool
    where: str | None  # a Python expression over `r`, see Parser.condition
    namespace: dict[str, Any] = field(default_factory=dict)
    stamp_floor: str | None = None  # every match has SystemModstamp >= this (index hint)
    order: list[tuple[str, bool, bool]] = field(default_factory=list)  # (path, desc, nulls_last)
    limit: int | None = None
    offset: int = 0
    long_text_fields: int = 0


Cond = tuple[str, str | None]  # (Python expression over r, SystemModstamp lower bound)


class Parser:
    def __init__(self, store: Store, soql: str) -> None:
        self.store = store
        self.soql = soql
        self.toks = tokenize(soql)
        self.i = 0
        self.obj = ""
        self.ns: dict[str, Any] = {}

    # -- token helpers
    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def next(self) -> Token:
        t = self.toks[self.i]
        self.i += 1
        return t

    def at_kw(self, *words: str) -> bool:
        return self.tok.kind == "ident" and self.tok.upper in words

    def expect_kw(self, word: str) -> None:
        if not self.at_kw(word):
            raise self.unexpected()
        self.i += 1

    def expect(self, text: str) -> None:
        if self.tok.text != text:
            raise self.unexpected()
        self.i += 1

    def unexpected(self, tok: Token | None = None) -> SoqlError:
        t = tok or self.tok
        if t.kind == "eof":
            return malformed(self.soql, t.pos, "unexpected token: <EOF>")
        return malformed(self.soql, t.pos, f"unexpected token: '{t.text}'")

    # -- grammar
    def parse(self) -> Query:
        self.expect_kw("SELECT")
        select_start = self.i
        # The FROM clause names the object every field refers to: read it first.
        depth = 0
        j = self.i
        while self.toks[j].kind != "eof":
            t = self.toks[j]
            depth += t.text == "("
            depth -= t.text == ")"
            if depth == 0 and t.kind == "ident" and t.upper == "FROM":
                break
            j += 1
        if self.toks[j].kind == "eof" or self.toks[j + 1].kind != "ident":
            raise self.unexpected(self.toks[j + 1] if self.toks[j].kind != "eof" else None)
        obj_tok = self.toks[j + 1]
        obj = self.store.object_name(obj_tok.text)
        if obj is None:
            raise SoqlError(
                "INVALID_TYPE",
                caret_message(self.soql, obj_tok.pos)
                + f"sObject type '{obj_tok.text}' is not supported. If you are attempting to use"
                " a custom object, be sure to append the '__c' after the entity name. Please"
                " reference your WSDL or the describe call for the appropriate names.",
            )
        self.obj = obj
        self.i = select_start
        count = False
        paths: list[str] = []
        if self.at_kw("COUNT") and self.toks[self.i + 1].text == "(":
            self.i += 2
            self.expect(")")
            count = True
        else:
            while True:
                t = self.next()
                if t.kind != "ident" or t.upper in ("FROM", "SELECT"):
                    raise self.unexpected(t)
                path, fdef = self.resolve(t)
                if path in paths:
                    raise malformed(self.soql, t.pos, f"duplicate field selected: {t.text}")
                paths.append(path)
                if self.tok.text != ",":
                    break
                self.i += 1
        self.expect_kw("FROM")
        self.i += 1  # object name, validated above
        q = Query(self.soql, obj, paths, count, None, self.ns)
        q.long_text_fields = sum(
            1 for p in paths if "." not in p and self.store.fields[obj][p].is_long_text
        )
        if self.at_kw("WHERE"):
            self.i += 1
            q.where, q.stamp_floor = self.condition()
        if self.at_kw("ORDER"):
            self.i += 1
            self.expect_kw("BY")
            while True:
                t = self.next()
                if t.kind != "ident":
                    raise self.unexpected(t)
                path, fdef = self.resolve(t)
                if not fdef.filterable:
                    raise SoqlError(
                        "INVALID_FIELD",
                        caret_message(self.soql, t.pos)
                        + f"field '{fdef.name}' can not be sorted in a query call",
                    )
                desc = False
                if self.at_kw("ASC", "DESC"):
                    desc = self.next().upper == "DESC"
                nulls_last = desc  # SOQL default: nulls first ascending, last descending
                if self.at_kw("NULLS"):
                    self.i += 1
                    if not self.at_kw("FIRST", "LAST"):
                        raise self.unexpected()
                    nulls_last = self.next().upper == "LAST"
                q.order.append((path, desc, nulls_last))
                if self.tok.text != ",":
                    break
                self.i += 1
        if self.at_kw("LIMIT"):
            self.i += 1
            q.limit = self.integer()
        if self.at_kw("OFFSET"):
            self.i += 1
            q.offset = self.integer()
            if q.offset > 2000:
                raise SoqlError("NUMBER_OUTSIDE_VALID_RANGE", "Maximum SOQL offset allowed is 2000")
        if self.tok.kind != "eof":
            raise self.unexpected()
        return q

    def integer(self) -> int:
        t = self.next()
        if t.kind != "num" or not t.text.isdigit():
            raise self.unexpected(t)
        return int(t.text)

    def resolve(self, t: Token) -> tuple[str, FieldDef]:
        """Canonical path and field definition of a (possibly dotted) field token."""
        parts = t.text.split(".")
        obj = self.obj
        if len(parts) > 1 and self.store.object_name(parts[0]) == obj:
            parts = parts[1:]  # "Account.Name" FROM Account is legal
        canon: list[str] = []
        for k, part in enumerate(parts):
            last = k == len(parts) - 1
            if last:
                fdef = self.store.field(obj, part)
                if fdef is None:
                    raise self.no_such_column(t, part, obj)
                canon.append(fdef.name)
                return ".".join(canon), fdef
            rel = next(
                (f for f in self.store.fields[obj].values()
                 if f.relationship_name and f.relationship_name.lower() == part.lower()
                 and f.reference_to and f.reference_to[0] in self.store.fields),
                None,
            )
            if rel is None or rel.relationship_name is None:
                raise SoqlError(
                    "INVALID_FIELD",
                    caret_message(self.soql, t.pos)
                    + f"Didn't understand relationship '{part}' in field path. If you are"
                    " attempting to use a custom relationship, be sure to append the '__r'"
                    " after the custom relationship name. Please reference your WSDL or the"
                    " describe call for the appropriate names.",
                )
            canon.append(rel.relationship_name)
            obj = rel.reference_to[0]
        raise self.unexpected(t)  # pragma: no cover - loop always returns

    def no_such_column(self, t: Token, name: str, obj: str) -> SoqlError:
        return SoqlError(
            "INVALID_FIELD",
            caret_message(self.soql, t.pos)
            + f"No such column '{name}' on entity '{obj}'. If you are attempting to use a custom"
            " field, be sure to append the '__c' after the custom field name. Please reference"
            " your WSDL or the describe call for the appropriate names.",
        )

    # -- conditions
    # Conditions compile to one Python expression over `r`, evaluated inside a single list
    # comprehension: no function call per row for plain comparisons, which is what keeps a
    # 200,000-row incremental scan inside the page budget. Literals and helper closures are
    # passed by name through `self.ns`; only validated field names appear in the source.
    def bind(self, value: Any) -> str:
        name = f"_c{len(self.ns)}"
        self.ns[name] = value
        return name

    # Each condition also yields the lowest SystemModstamp a matching row can have (or None):
    # AND takes the highest bound of its terms, OR the lowest (only if every term has one).
    def condition(self) -> Cond:
        first = self.unary()
        if not self.at_kw("AND", "OR"):
            return first
        op = self.tok.upper
        parts = [first]
        while self.at_kw("AND", "OR"):
            if self.tok.upper != op:
                raise self.unexpected()  # SOQL demands parentheses when mixing AND and OR
            self.i += 1
            parts.append(self.unary())
        expr = "(" + f" {op.lower()} ".join(p for p, _ in parts) + ")"
        bounds = [b for _, b in parts if b is not None]
        if op == "AND":
            return expr, max(bounds) if bounds else None
        return expr, min(bounds) if len(bounds) == len(parts) else None

    def unary(self) -> Cond:
        if self.at_kw("NOT"):
            self.i += 1
            return f"(not {self.unary()[0]})", None
        if self.tok.text == "(":
            self.i += 1
            inner = self.condition()
            self.expect(")")
            return inner
        return self.comparison()

    def comparison(self) -> Cond:
        t = self.next()
        if t.kind != "ident":
            raise self.unexpected(t)
        path, fdef = self.resolve(t)
        if not fdef.filterable:
            raise SoqlError(
                "INVALID_FIELD",
                caret_message(self.soql, t.pos)
                + f"field '{fdef.name}' can not be filtered in a query call",
            )
        get = getter(self.store, self.obj, path)
        if self.at_kw("IN", "NOT"):
            negate = self.next().upper == "NOT"
            if negate:
                self.expect_kw("IN")
            self.expect("(")
            values = [self.literal(fdef)]
            while self.tok.text == ",":
                self.i += 1
                values.append(self.literal(fdef))
            self.expect(")")
            keys = frozenset(key_of(fdef, v) for v in values)
            key_fn = self.bind(lambda r: key_of(fdef, get(r)))
            bound = None
            if path == "SystemModstamp" and not negate and None not in values:
                bound = min(values)
            return f"({key_fn}(r) {'not in' if negate else 'in'} {self.bind(keys)})", bound
        if self.at_kw("LIKE"):
            self.i += 1
            lit = self.next()
            if lit.kind != "str":
                raise self.unexpected(lit)
            rx = like_regex(unquote(lit.text))
            fn = self.bind(lambda r: isinstance(v := get(r), str) and rx.match(v) is not None)
            return f"{fn}(r)", None
        op_tok = self.next()
        if op_tok.kind != "op":
            raise self.unexpected(op_tok)
        value = self.literal(fdef)
        op = "!=" if op_tok.text == "<>" else op_tok.text
        bound = value if path == "SystemModstamp" and op in ("=", ">", ">=") else None
        plain = "." not in path and fdef.type not in schema.TEXT_TYPES
        if plain and value is not None:
            const, field_ = self.bind(value), repr(path)
            if op in ("=", "!="):
                return f"(r.get({field_}) {'==' if op == '=' else '!='} {const})", bound
            return f"((_v := r.get({field_})) is not None and _v {op} {const})", bound
        if "." not in path and value is not None and op in ("=", "!="):
            # Text equality, case-insensitive; a null never equals and always differs.
            const, field_ = self.bind(key_of(fdef, value)), repr(path)
            test = f"(type(_v := r.get({field_})) is str and _v.lower() == {const})"
            return (test if op == "=" else f"(not {test})"), bound
        return f"{self.bind(compare(fdef, path, get, op, value))}(r)", bound

    def literal(self, fdef: FieldDef) -> Any:
        """Read one literal and check it suits the field, with the real error if it does not."""
        t = self.next()
        if t.kind == "ident" and t.upper == "NULL":
            return None
        ftype = fdef.type
        if ftype == "datetime":
            if t.kind == "dt":
                return schema.normalize_datetime(t.text, keep_ms=True)
            raise self._bad_value(fdef, t, "dateTime")
        if ftype == "date":
            if t.kind == "date":
                return t.text
            raise self._bad_value(fdef, t, "date")
        if ftype == "boolean":
            if t.kind == "ident" and t.upper in ("TRUE", "FALSE"):
                return t.upper == "TRUE"
            raise self._bad_value(fdef, t, "boolean")
        if ftype in schema.NUMBER_TYPES:
            if t.kind == "num":
                return float(t.text)
            raise self._bad_value(fdef, t, "number")
        if t.kind == "str":
            text = unquote(t.text)
            if ftype in schema.ID_TYPES:
                # Id filters must hold real ids; 15-character ids match their 18-character form.
                if len(text) not in (15, 18) or not text.isalnum():
                    raise SoqlError(
                        "INVALID_QUERY_FILTER_OPERATOR",
                        caret_message(self.soql, t.pos) + f"invalid ID field: {text}",
                    )
                return id18(text) if len(text) == 15 else text
            return text
        if t.kind in ("num", "date", "dt", "ident"):
            raise self._bad_value(fdef, t, "string")
        raise self.unexpected(t)

    def _bad_value(self, fdef: FieldDef, t: Token, kind: str) -> SoqlError:
        if t.kind in ("eof", "punct", "op"):
            return self.unexpected(t)
        quoted = "should not be enclosed in quotes" if kind != "string" else "should be quoted"
        return SoqlError(
            "INVALID_FIELD",
            caret_message(self.soql, t.pos)
            + f"value of filter criterion for field '{fdef.name}' must be of type {kind} and "
            + quoted,
        )


def parse(store: Store, soql: str) -> Query:
    with store.lock:
        return Parser(store, soql).parse()
