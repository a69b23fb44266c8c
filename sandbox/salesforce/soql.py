"""A SOQL parser and evaluator for the subset ecosync uses, failing the way the real API fails.

Supported: field lists (with child-to-parent paths such as ``Account.Website``), ``COUNT()``,
WHERE with AND/OR/NOT and parentheses (mixing AND and OR without parentheses is rejected, as
Salesforce rejects it), ``= != <> < <= > >=``, ``IN``/``NOT IN``, ``LIKE``, string, number,
boolean, null, date and datetime literals; ORDER BY (ASC/DESC, NULLS FIRST/LAST); LIMIT; OFFSET.
The WHERE clause compiles to one Python closure, evaluated once per row per query.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox.salesforce import schema
from sandbox.salesforce.schema import FieldDef
from sandbox.salesforce.store import Record, Store


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
            raise _malformed(soql, start, f"unexpected token: '{soql[start:].split()[0]}'")
        tokens.append(Token(m.lastgroup, m.group(m.lastgroup), m.start(m.lastgroup)))
        pos = m.end()
    tokens.append(Token("eof", "", len(soql)))
    return tokens


def _where(soql: str, pos: int) -> str:
    """The '\\n<query>\\n   ^\\nERROR at Row:1:Column:N\\n' preamble real errors carry."""
    line = soql.replace("\n", " ")
    return f"\n{line}\n{' ' * pos}^\nERROR at Row:1:Column:{pos + 1}\n"


def _malformed(soql: str, pos: int, msg: str) -> SoqlError:
    return SoqlError("MALFORMED_QUERY", _where(soql, pos) + msg)


# ----------------------------------------------------------------------------- AST


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


Getter = Callable[[Record], Any]
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
            return _malformed(self.soql, t.pos, "unexpected token: <EOF>")
        return _malformed(self.soql, t.pos, f"unexpected token: '{t.text}'")

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
                _where(self.soql, obj_tok.pos)
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
                    raise _malformed(self.soql, t.pos, f"duplicate field selected: {t.text}")
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
                        _where(self.soql, t.pos)
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
                    _where(self.soql, t.pos)
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
            _where(self.soql, t.pos)
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
                _where(self.soql, t.pos)
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
            keys = frozenset(_key(fdef, v) for v in values)
            key_of = self.bind(lambda r: _key(fdef, get(r)))
            bound = None
            if path == "SystemModstamp" and not negate and None not in values:
                bound = min(values)
            return f"({key_of}(r) {'not in' if negate else 'in'} {self.bind(keys)})", bound
        if self.at_kw("LIKE"):
            self.i += 1
            lit = self.next()
            if lit.kind != "str":
                raise self.unexpected(lit)
            rx = _like_regex(_unquote(lit.text))
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
        return f"{self.bind(_compare(fdef, path, get, op, value))}(r)", bound

    def literal(self, fdef: FieldDef) -> Any:
        """Read one literal and check it suits the field, with the real error if it does not."""
        t = self.next()
        if t.kind == "ident" and t.upper == "NULL":
            return None
        ftype = fdef.type
        if ftype == "datetime":
            if t.kind == "dt":
                return schema.normalize_datetime(t.text)
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
            return _unquote(t.text)
        if t.kind in ("num", "date", "dt", "ident") and t.kind != "eof":
            raise self._bad_value(fdef, t, "string")
        raise self.unexpected(t)

    def _bad_value(self, fdef: FieldDef, t: Token, kind: str) -> SoqlError:
        if t.kind in ("eof", "punct", "op"):
            return self.unexpected(t)
        quoted = "should not be enclosed in quotes" if kind != "string" else "should be quoted"
        return SoqlError(
            "INVALID_FIELD",
            _where(self.soql, t.pos)
            + f"value of filter criterion for field '{fdef.name}' must be of type {kind} and "
            + quoted,
        )


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


def _like_regex(pattern: str) -> re.Pattern[str]:
    out = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.compile(f"^{out}$", re.IGNORECASE | re.DOTALL)


def _key(fdef: FieldDef, value: Any) -> Any:
    """Comparison key: SOQL compares text case-insensitively and ids case-sensitively."""
    if isinstance(value, str) and fdef.type in schema.TEXT_TYPES:
        return value.lower()
    return value


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq, "!=": operator.ne, "<>": operator.ne,
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}


def _compare(
    fdef: FieldDef, path: str, get: Getter, op: str, value: Any
) -> Callable[[Record], bool]:
    if value is None:
        if op == "=":
            return lambda r: get(r) is None
        if op in ("!=", "<>"):
            return lambda r: get(r) is not None
        return lambda r: False
    key = _key(fdef, value)
    cmp = _OPS[op]
    if fdef.type in schema.TEXT_TYPES:
        def text(r: Record) -> bool:
            v = get(r)
            if v is None:
                return op in ("!=", "<>")
            return cmp(v.lower() if isinstance(v, str) else v, key)
        return text
    if "." not in path:
        # The hot path of incremental reads (SystemModstamp > x): one dict lookup per row.
        name = path
        if op in ("!=", "<>"):
            return lambda r: r.get(name) != key
        return lambda r: (v := r.get(name)) is not None and cmp(v, key)
    if op in ("!=", "<>"):
        return lambda r: get(r) != key
    return lambda r: (v := get(r)) is not None and cmp(v, key)


def getter(store: Store, obj: str, path: str) -> Getter:
    """Value of a canonical path on a record; parent paths follow the lookup id."""
    if "." not in path:
        def plain(r: Record) -> Any:
            return r.get(path)
        return plain
    rel, rest = path.split(".", 1)
    ref = next(f for f in store.fields[obj].values() if f.relationship_name == rel)
    parent_obj = ref.reference_to[0]
    inner = getter(store, parent_obj, rest)
    table = store.tables[parent_obj]

    def follow(r: Record) -> Any:
        parent_id = r.get(ref.name)
        parent = table.get(parent_id) if parent_id else None
        return inner(parent) if parent is not None else None
    return follow


def parse(store: Store, soql: str) -> Query:
    with store.lock:
        return Parser(store, soql).parse()


def execute(store: Store, q: Query, include_deleted: bool) -> list[Record]:
    """Matching rows, sorted and limited: evaluated once, kept by the cursor for its pages."""
    indexed = q.stamp_floor is not None and "SystemModstamp" in store.fields[q.object]
    if indexed and q.stamp_floor is not None:
        rows = store.rows_stamped_from(q.object, q.stamp_floor)
    else:
        with store.lock:
            rows = list(store.tables[q.object].values())
    conditions = [q.where] if q.where else []
    if not include_deleted and "IsDeleted" in store.fields[q.object]:
        conditions.insert(0, "not r['IsDeleted']")
    if conditions:
        source = f"lambda rows: [r for r in rows if {' and '.join(conditions)}]"
        # The source is built by the parser from validated field names and bound constants.
        row_filter = eval(source, dict(q.namespace))  # noqa: S307
        rows = row_filter(rows)
    index_order = [("SystemModstamp", False, False), ("Id", False, False)]
    if q.order and not (indexed and q.order == index_order[: len(q.order)]):
        rows = _sorted(store, q, rows)  # else the index already yields this order
    if q.offset:
        rows = rows[q.offset :]
    if q.limit is not None:
        rows = rows[: q.limit]
    return rows


def _sort_key(store: Store, obj: str, path: str, desc: bool, nulls_last: bool) -> Getter:
    """(null flag, value): None sorts first or last per NULLS FIRST/LAST and never meets a
    value in a comparison; text sorts case-insensitively."""
    fdef = _field_at(store, obj, path)
    get: Getter = operator.itemgetter(path) if "." not in path else getter(store, obj, path)
    # reverse=True flips the flag too, so the flag's sense depends on the direction
    null_high = nulls_last != desc
    if fdef.type in schema.TEXT_TYPES:
        def text_key(r: Record) -> Any:
            v = get(r)
            return (v is None) == null_high, v.lower() if isinstance(v, str) else v
        return text_key

    def key(r: Record) -> Any:
        v = get(r)
        return (v is None) == null_high, v
    return key


def _sorted(store: Store, q: Query, rows: list[Record]) -> list[Record]:
    paths = [p for p, _, _ in q.order]
    fdefs = [_field_at(store, q.object, p) for p in paths]
    if (
        len({d for _, d, _ in q.order}) == 1
        and all("." not in p for p in paths)
        and all(not f.nillable and f.type not in schema.TEXT_TYPES for f in fdefs)
    ):
        # Never-null, non-text columns in one direction: a C-level key is enough.
        return sorted(rows, key=operator.itemgetter(*paths), reverse=q.order[0][1])
    keys = [(_sort_key(store, q.object, p, d, n), d) for p, d, n in q.order]
    if all(d == keys[0][1] for _, d in keys):
        # One sort with a composite key when every column runs the same direction.
        funcs = [k for k, _ in keys]
        return sorted(rows, key=lambda r: [f(r) for f in funcs], reverse=keys[0][1])
    # Mixed directions: stable sorts from the last key to the first.
    for func, desc in reversed(keys):
        rows = sorted(rows, key=func, reverse=desc)
    return rows


def _field_at(store: Store, obj: str, path: str) -> FieldDef:
    *rels, name = path.split(".")
    for rel in rels:
        ref = next(f for f in store.fields[obj].values() if f.relationship_name == rel)
        obj = ref.reference_to[0]
    return store.fields[obj][name]


def project(store: Store, q: Query, rec: Record, version: str) -> dict[str, Any]:
    """One REST query record: `attributes` first, then the selected fields in SELECT order."""
    out: dict[str, Any] = {
        "attributes": {
            "type": q.object,
            "url": f"/services/data/v{version}/sobjects/{q.object}/{rec['Id']}",
        }
    }
    for path in q.fields:
        if "." not in path:
            out[path] = rec.get(path)
            continue
        _nest(store, q.object, rec, path.split("."), out, version)
    return out


def _nest(
    store: Store, obj: str, rec: Record, parts: list[str], out: dict[str, Any], version: str
) -> None:
    if len(parts) == 1:
        out[parts[0]] = rec.get(parts[0])
        return
    rel = parts[0]
    ref = next(f for f in store.fields[obj].values() if f.relationship_name == rel)
    parent_obj = ref.reference_to[0]
    parent = store.tables[parent_obj].get(rec.get(ref.name) or "")
    if parent is None:
        out[rel] = None
        return
    sub = out.get(rel)
    if not isinstance(sub, dict):
        sub = {"attributes": {
            "type": parent_obj,
            "url": f"/services/data/v{version}/sobjects/{parent_obj}/{parent['Id']}",
        }}
        out[rel] = sub
    _nest(store, parent_obj, parent, parts[1:], sub, version)
