"""POST /composite: up to 25 subrequests (at most 5 collections or queries), one API call.

Subrequests run in order through the same dispatcher as top-level requests, but without the API
gate: the platform counts the whole composite request as a single call. `@{ref.path}` references
are resolved against earlier subrequest bodies. With `allOrNone`, any failed subrequest rolls back
every write and the others report PROCESSING_HALTED.
"""

from __future__ import annotations

import json
import re
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from sandbox.common import Request, Response, json_response
from sandbox.salesforce.errors import ApiError
from sandbox.salesforce.store import Store


class SalesforceApp(Protocol):
    """What composite needs of the app: its store and its router (app.py implements it; a
    protocol rather than an import keeps the two modules free of a cycle)."""

    store: Store

    def dispatch(self, req: Request, version: str, rest: str) -> tuple[str, Response]: ...

MAX_SUBREQUESTS = 25
MAX_HEAVY = 5  # sObject Collections and query subrequests
_REF = re.compile(r"@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])*)\}")
_DATA = re.compile(r"^/services/data/v(\d+\.\d)/(.*)$")
HALTED_ROLLBACK = (
    "The transaction was rolled back since another operation in the same transaction failed."
)


class _Unresolved(Exception):
    pass


def run_composite(app: SalesforceApp, req: Request, version: str) -> Response:
    body = req.json()
    if not isinstance(body, dict) or not isinstance(body.get("compositeRequest"), list):
        raise ApiError(400, "JSON_PARSER_ERROR", "Missing required field: compositeRequest")
    subs: list[Any] = body["compositeRequest"]
    if len(subs) > MAX_SUBREQUESTS:
        raise ApiError(
            400, "LIMIT_EXCEEDED",
            f"Composite request limit exceeded: {len(subs)} subrequests, the maximum is"
            f" {MAX_SUBREQUESTS}",
        )
    heavy = sum(1 for s in subs if isinstance(s, dict) and _is_heavy(str(s.get("url", ""))))
    if heavy > MAX_HEAVY:
        raise ApiError(
            400, "LIMIT_EXCEEDED",
            f"Composite request may contain at most {MAX_HEAVY} sObject Collections or query"
            " subrequests",
        )
    all_or_none = bool(body.get("allOrNone", False))
    refs: dict[str, Any] = {}
    failed_refs: set[str] = set()
    out: list[dict[str, Any]] = []
    store = app.store
    with store.transaction() as tx:
        for sub in subs:
            if not isinstance(sub, dict) or "url" not in sub or "method" not in sub:
                raise ApiError(400, "JSON_PARSER_ERROR", "Each subrequest needs method and url")
            ref_id = str(sub.get("referenceId", ""))
            try:
                url = _resolve(str(sub["url"]), refs, failed_refs)
                sub_body = _resolve(sub.get("body"), refs, failed_refs)
            except _Unresolved as exc:
                out.append(_entry(ref_id, 400, [{
                    "errorCode": "PROCESSING_HALTED",
                    "message": f"Invalid reference specified. No value for {exc} found in"
                    " prior responses",
                }]))
                failed_refs.add(ref_id)
                continue
            status, payload, headers = _run_one(app, version, str(sub["method"]), url, sub_body)
            out.append(_entry(ref_id, status, payload, headers))
            if status >= 400:
                failed_refs.add(ref_id)
            else:
                refs[ref_id] = payload
        if all_or_none and failed_refs:
            tx.rollback()
            halted = [{"errorCode": "PROCESSING_HALTED", "message": HALTED_ROLLBACK}]
            out = [e if e["httpStatusCode"] >= 400 else _entry(e["referenceId"], 400, halted)
                   for e in out]
    return json_response(200, {"compositeResponse": out})


def _is_heavy(url: str) -> bool:
    path = urlsplit(url).path.rstrip("/")
    return path.endswith(("/composite/sobjects", "/query", "/queryAll"))


def _entry(
    ref_id: str, status: int, payload: Any, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "body": payload,
        "httpHeaders": headers or {},
        "httpStatusCode": status,
        "referenceId": ref_id,
    }


def _run_one(
    app: SalesforceApp, version: str, method: str, url: str, body: Any
) -> tuple[int, Any, dict[str, str]]:
    parts = urlsplit(url)
    m = _DATA.match(parts.path)
    if not m:
        return 404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not"
                      " exist"}], {}
    sub_req = Request(
        method=method.upper(),
        path=parts.path,
        query=parse_qs(parts.query, keep_blank_values=True),
        headers={"content-type": "application/json"},
        body=b"" if body is None else json.dumps(body).encode(),
    )
    _key, resp = app.dispatch(sub_req, m.group(1), m.group(2))
    payload = json.loads(resp.body) if resp.body else None
    headers = {}
    if resp.status == 201 and isinstance(payload, dict) and "id" in payload:
        headers["Location"] = f"{parts.path.rstrip('/')}/{payload['id']}"
    return resp.status, payload, headers


def _resolve(value: Any, refs: dict[str, Any], failed: set[str]) -> Any:
    if isinstance(value, str):
        def sub(m: re.Match[str]) -> str:
            return str(_lookup(m.group(1), m.group(2), refs, failed))
        return _REF.sub(sub, value)
    if isinstance(value, dict):
        return {k: _resolve(v, refs, failed) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, refs, failed) for v in value]
    return value


def _lookup(ref: str, path: str, refs: dict[str, Any], failed: set[str]) -> Any:
    if ref not in refs or ref in failed:
        raise _Unresolved(f"{ref}{path}")
    cur = refs[ref]
    for part in re.findall(r"\.([A-Za-z0-9_]+)|\[(\d+)\]", path):
        name, index = part
        try:
            cur = cur[int(index)] if index else cur[name]
        except (KeyError, IndexError, TypeError):
            raise _Unresolved(f"{ref}{path}") from None
    return cur
