"""Clients wired to a SalesforceSandbox: a requests.Session and an unmodified simple-salesforce.

simple-salesforce hard-codes ``https://{domain}.salesforce.com`` for logins, so the session
rewrites any ``https://*.salesforce.com`` URL to the emulator; once the login answers with the
emulator's ``instance_url`` every later call goes there directly.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

import requests

if TYPE_CHECKING:
    from sandbox.salesforce import SalesforceSandbox

_SF_HOST = re.compile(r"^https://[A-Za-z0-9.-]*\.salesforce\.com(?::\d+)?", re.IGNORECASE)

Auth = Literal["session", "password", "soap", "client_credentials", "jwt"]


class _RewritingSession(requests.Session):
    def __init__(self, origin: str) -> None:
        super().__init__()
        self._origin = origin

    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        if isinstance(url, bytes):
            url = url.decode()
        return super().request(method, _SF_HOST.sub(self._origin, url), *args, **kwargs)


def requests_session(sandbox: SalesforceSandbox) -> requests.Session:
    """A session that trusts the sandbox CA and sends *.salesforce.com URLs to the sandbox.

    `trust_env` is off because REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE would override `verify`.
    """
    session = _RewritingSession(sandbox.url)
    session.trust_env = False
    session.verify = str(sandbox.ca_file)
    return session


def salesforce_client(sandbox: SalesforceSandbox, auth: Auth = "session", **kwargs: Any) -> Any:
    """A `simple_salesforce.Salesforce` logged in to the sandbox with the chosen flow."""
    from simple_salesforce.api import Salesforce

    session = requests_session(sandbox)
    common: dict[str, Any] = {"session": session, "version": sandbox.api_version, **kwargs}
    if auth == "session":
        return Salesforce(session_id=sandbox.access_token, instance_url=sandbox.url, **common)
    if auth == "password":
        return Salesforce(
            username=sandbox.username, password=sandbox.password,
            consumer_key=sandbox.client_id, consumer_secret=sandbox.client_secret, **common,
        )
    if auth == "soap":
        return Salesforce(
            username=sandbox.username, password=sandbox.password,
            security_token=sandbox.security_token, **common,
        )
    if auth == "client_credentials":
        return Salesforce(
            consumer_key=sandbox.client_id, consumer_secret=sandbox.client_secret,
            domain="ecosync-sandbox.my", **common,
        )
    if auth == "jwt":
        return Salesforce(
            username=sandbox.username, consumer_key=sandbox.client_id,
            privatekey=private_key_pem(), domain="login", **common,
        )
    raise ValueError(f"unknown auth flow {auth!r}")


_KEY: str | None = None


def private_key_pem() -> str:
    """A throwaway RSA key (PEM) for JWT-bearer logins: the sandbox accepts any well-formed JWT
    whose `iss` is the client id and `sub` the username; the signature is not checked."""
    global _KEY
    if _KEY is None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _KEY = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
    return _KEY


_private_key_pem = private_key_pem  # the name early callers imported
