"""SOQL calls: one query, its next page, and several queries in one Composite call.

A Composite request counts as one API call and may hold up to five query subrequests
(`/query/?q=` or `/queryAll/?q=`); the pull uses it to fold a COUNT() into the first page of a
backfill and to read a page's extra long text field together with the next page.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from connectors.salesforce.session import Api

MAX_QUERY_SUBREQUESTS = 5  # platform cap on query/collection subrequests per composite
_SUB_ERRORS: dict[int, type[SalesforceError]] = {
    400: SalesforceMalformedRequest, 403: SalesforceRefusedRequest,
    404: SalesforceResourceNotFound,
}


def query(api: Api, text: str, *, deleted: bool) -> Any:
    return api.call(lambda sf: sf.query(text, include_deleted=deleted))


def more(api: Api, next_url: str) -> Any:
    return api.call(lambda sf: sf.query_more(next_url, identifier_is_url=True))


def count(api: Api, text: str, *, deleted: bool) -> int:
    return int(query(api, text, deleted=deleted)["totalSize"])


def composite(api: Api, subs: Sequence[tuple[str, str]], *, deleted: bool) -> dict[str, Any]:
    """Run (referenceId, SOQL) pairs in one Composite call; bodies by referenceId.

    A failed subrequest is raised as the error simple-salesforce would have raised for it
    alone, inside the call, so the one retry policy treats it like any other response.
    """
    if len(subs) > MAX_QUERY_SUBREQUESTS:
        raise ValueError(f"at most {MAX_QUERY_SUBREQUESTS} queries per composite request")
    resource = "queryAll" if deleted else "query"
    version = api.config.api_version
    request = {"allOrNone": False, "compositeRequest": [
        {"method": "GET", "referenceId": ref,
         "url": f"/services/data/v{version}/{resource}/?{urlencode({'q': text})}"}
        for ref, text in subs
    ]}

    def run(sf: Any) -> dict[str, Any]:
        body: Any = sf.restful("composite", method="POST", json=request)
        out: dict[str, Any] = {}
        for sub in body["compositeResponse"]:
            status = int(sub.get("httpStatusCode", 500))
            if status >= 300:
                error = _SUB_ERRORS.get(status, SalesforceGeneralError)
                raise error(f"{sf.base_url}composite", status, str(sub.get("referenceId")),
                            sub.get("body"))
            out[str(sub["referenceId"])] = sub["body"]
        return out

    result: dict[str, Any] = api.call(run)
    return result
