"""Salesforce-shaped error responses: top-level REST errors are JSON arrays keyed `errorCode`."""

from __future__ import annotations

from collections.abc import Sequence

from sandbox.common import Response, json_response


class ApiError(Exception):
    """Raised inside handlers; becomes `[{"message","errorCode"[,"fields"]}]` with a status."""

    def __init__(
        self, status: int, code: str, message: str, fields: Sequence[str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields

    def response(self) -> Response:
        return error_response(self.status, self.code, self.message, self.fields)


def error_response(
    status: int, code: str, message: str, fields: Sequence[str] | None = None
) -> Response:
    item: dict[str, object] = {"message": message, "errorCode": code}
    if fields is not None:
        item["fields"] = list(fields)
    return json_response(status, [item])


INVALID_SESSION = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
NOT_FOUND_MESSAGE = "The requested resource does not exist"


def not_found() -> ApiError:
    return ApiError(404, "NOT_FOUND", NOT_FOUND_MESSAGE)
