"""Logins and access tokens: OAuth2 token endpoint (password, client credentials, JWT bearer) and
the SOAP partner login simple-salesforce uses for username + password + security token.

Tokens are opaque strings; `expire_after(n)` gives every token (existing and future) a budget of
n API calls, after which the API answers 401 INVALID_SESSION_ID, as an expired session does.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from sandbox.common import Request, Response, json_response

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass(slots=True)
class Credentials:
    username: str = "integration@ecosync.example"
    password: str = "s4ndbox-Pass!"
    security_token: str = "SANDBOXTOKEN0001"
    client_id: str = "3MVG9sandbox.ecosync.consumer.key"
    client_secret: str = "ECOSYNC0SANDBOX0SECRET"


@dataclass(slots=True)
class Tokens:
    org_id: str
    origin: str = ""
    credentials: Credentials = field(default_factory=Credentials)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # token -> calls left (None: unlimited)
    live: dict[str, int | None] = field(default_factory=dict)
    budget: int | None = None
    logins: Counter[str] = field(default_factory=Counter)
    fail_logins: int = 0

    def issue(self) -> str:
        token = f"{self.org_id[:15]}!AQ{secrets.token_urlsafe(72)}"
        with self.lock:
            self.live[token] = self.budget
        return token

    def expire_after(self, calls: int | None) -> None:
        with self.lock:
            self.budget = calls
            for token in self.live:
                self.live[token] = calls

    def revoke_all(self) -> None:
        with self.lock:
            for token in self.live:
                self.live[token] = 0

    def check(self, header: str | None) -> bool:
        """Consume one call of the bearer token's budget; False if missing or expired."""
        if not header or not header.lower().startswith(("bearer ", "oauth ")):
            return False
        token = header.split(" ", 1)[1].strip()
        with self.lock:
            if token not in self.live:
                return False
            left = self.live[token]
            if left is None:
                return True
            if left <= 0:
                return False
            self.live[token] = left - 1
            return True

    # ------------------------------------------------------------------ OAuth2
    def token_endpoint(self, req: Request) -> Response:
        form = {k: v[-1] for k, v in parse_qs(req.body.decode(), keep_blank_values=True).items()}
        grant = form.get("grant_type", "")
        self.logins[grant or "none"] += 1
        creds = self.credentials
        if self._consume_login_failure():
            return _oauth_error("invalid_grant", "authentication failure")
        if grant == "password":
            if form.get("client_id") != creds.client_id:
                return _oauth_error("invalid_client_id", "client identifier invalid")
            if form.get("client_secret") != creds.client_secret:
                return _oauth_error("invalid_client", "invalid client credentials")
            if form.get("username") != creds.username or form.get("password") not in (
                creds.password, creds.password + creds.security_token,
            ):
                return _oauth_error("invalid_grant", "authentication failure")
        elif grant == "client_credentials":
            cid, secret = form.get("client_id"), form.get("client_secret")
            basic = req.headers.get("authorization", "")
            if basic.lower().startswith("basic "):
                try:
                    cid, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
                except (binascii.Error, UnicodeDecodeError):
                    return _oauth_error("invalid_client", "invalid client credentials")
            if cid != creds.client_id:
                return _oauth_error("invalid_client_id", "client identifier invalid")
            if secret != creds.client_secret:
                return _oauth_error("invalid_client", "invalid client credentials")
        elif grant == JWT_GRANT:
            claims = _jwt_claims(form.get("assertion", ""))
            if claims is None:
                return _oauth_error("invalid_grant", "invalid assertion")
            if claims.get("iss") != creds.client_id:
                return _oauth_error("invalid_client_id", "client identifier invalid")
            if claims.get("sub") != creds.username:
                return _oauth_error("invalid_grant", "user hasn't approved this consumer")
            try:
                expired = float(claims.get("exp", 0)) < time.time()  # sent as a string
            except (TypeError, ValueError):
                expired = True
            if expired:
                return _oauth_error("invalid_grant", "expired authorization code")
        else:
            return _oauth_error("unsupported_grant_type", "grant type not supported")
        token = self.issue()
        body: dict[str, Any] = {
            "access_token": token,
            "instance_url": self.origin,
            "id": f"{self.origin}/id/{self.org_id}/0055g00000ECOSYAA2",
            "token_type": "Bearer",
            "issued_at": str(int(time.time() * 1000)),
            "signature": base64.b64encode(secrets.token_bytes(32)).decode(),
            "scope": "api",
        }
        if grant == "client_credentials":
            body["api_instance_url"] = self.origin
        return json_response(200, body)

    def _consume_login_failure(self) -> bool:
        with self.lock:
            if self.fail_logins > 0:
                self.fail_logins -= 1
                return True
            return False

    # ------------------------------------------------------------------ SOAP
    def soap_login(self, req: Request, version: str) -> Response:
        self.logins["soap"] += 1
        text = req.body.decode(errors="replace")
        user = _xml_value(text, "username")
        password = _xml_value(text, "password")
        creds = self.credentials
        if (
            self._consume_login_failure()
            or user != creds.username
            or password != creds.password + creds.security_token
        ):
            return _soap_fault(
                "INVALID_LOGIN", "INVALID_LOGIN: Invalid username, password, security token; "
                "or user locked out."
            )
        token = self.issue()
        server = f"{self.origin}/services/Soap/u/{version}/{self.org_id[:15]}"
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
            ' xmlns="urn:partner.soap.sforce.com"'
            ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            "<soapenv:Body><loginResponse><result>"
            f"<metadataServerUrl>{escape(self.origin)}/services/Soap/m/{version}/"
            f"{self.org_id[:15]}</metadataServerUrl>"
            "<passwordExpired>false</passwordExpired><sandbox>false</sandbox>"
            f"<serverUrl>{escape(server)}</serverUrl>"
            f"<sessionId>{escape(token)}</sessionId>"
            "<userId>0055g00000ECOSYAA2</userId>"
            f"<userInfo><organizationId>{self.org_id}</organizationId>"
            f"<userName>{escape(creds.username)}</userName></userInfo>"
            "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )
        return Response(200, body.encode(), {"Content-Type": "text/xml;charset=UTF-8"})


def _oauth_error(error: str, description: str) -> Response:
    return json_response(400, {"error": error, "error_description": description})


def _soap_fault(code: str, message: str) -> Response:
    # Real login faults are HTTP 500 with sf:exceptionCode / sf:exceptionMessage details.
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
        ' xmlns:sf="urn:fault.partner.soap.sforce.com"'
        ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<soapenv:Body><soapenv:Fault><faultcode>sf:{code}</faultcode>"
        f"<faultstring>{escape(message)}</faultstring><detail>"
        '<sf:LoginFault xsi:type="sf:LoginFault">'
        f"<sf:exceptionCode>{code}</sf:exceptionCode>"
        f"<sf:exceptionMessage>{escape(message)}</sf:exceptionMessage>"
        "</sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
    return Response(500, body.encode(), {"Content-Type": "text/xml;charset=UTF-8"})


def _xml_value(text: str, tag: str) -> str | None:
    m = re.search(rf"<(?:\w+:)?{tag}>(.*?)</(?:\w+:)?{tag}>", text, re.DOTALL)
    if not m:
        return None
    value = m.group(1)
    for entity, char in (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'")):
        value = value.replace(entity, char)
    return value.replace("&amp;", "&")


def _jwt_claims(assertion: str) -> dict[str, Any] | None:
    """Claims of a well-formed JWT (header.payload.signature); the signature is not checked."""
    parts = assertion.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except (binascii.Error, ValueError):
        return None
    return claims if isinstance(claims, dict) else None
