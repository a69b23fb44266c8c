"""Metadata API (SOAP, /services/Soap/m/XX.X) for field provisioning, as `sf.mdapi` calls it.

Emulated: createMetadata / upsertMetadata of CustomField (Number, Text, TextArea, LongTextArea,
Checkbox, Date, DateTime, Currency, Url), readMetadata of CustomField, and upsert/update of a
PermissionSet's fieldPermissions. Like a real org, a field created through the API can be left
without field-level security (`sandbox.grant_new_fields = False`): it then stays invisible to
describe, SOQL and writes until a PermissionSet grants it.

zeep (inside `sf.mdapi`) uses its own requests session: point it at the sandbox CA with
``sf.mdapi._client.transport.session = requests_session(sandbox)`` or REQUESTS_CA_BUNDLE.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

from sandbox.common import Request, Response
from sandbox.salesforce.schema import FieldDef

if TYPE_CHECKING:
    from sandbox.salesforce import SalesforceSandbox

MD = "http://soap.sforce.com/2006/04/metadata"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
MAX_COMPONENTS = 10
_NAME = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)\.([A-Za-z][A-Za-z0-9_]*__c)$")

# Metadata field type -> (describe type, default length)
_TYPES: dict[str, tuple[str, int]] = {
    "Number": ("double", 0),
    "Currency": ("currency", 0),
    "Percent": ("percent", 0),
    "Text": ("string", 0),
    "TextArea": ("textarea", 255),
    "LongTextArea": ("textarea", 0),
    "Checkbox": ("boolean", 0),
    "Date": ("date", 0),
    "DateTime": ("datetime", 0),
    "Url": ("url", 255),
    "Email": ("email", 80),
    "Phone": ("phone", 40),
}
_REVERSE = {"double": "Number", "currency": "Currency", "percent": "Percent", "string": "Text",
            "boolean": "Checkbox", "date": "Date", "datetime": "DateTime", "url": "Url",
            "email": "Email", "phone": "Phone"}


def handle(sb: SalesforceSandbox, req: Request) -> Response:
    try:
        # Loopback-only test server fed by the test's own clients; expat never fetches external
        # entities and, from 2.4 (bundled with 3.11), caps entity amplification.
        root = ET.fromstring(req.body)  # noqa: S314
    except ET.ParseError:
        return _fault("INVALID_XML", "The request body is not well-formed XML")
    session = root.find(f".//{{{MD}}}SessionHeader/{{{MD}}}sessionId")
    token = session.text if session is not None else None
    if not sb.tokens.check(f"Bearer {token}" if token else None):
        return _fault("INVALID_SESSION_ID", "Invalid Session ID found in SessionHeader: Illegal"
                      " Session. Session not found, missing session key: " + (token or "")[:15])
    body = root.find("{http://schemas.xmlsoap.org/soap/envelope/}Body")
    call = body[0] if body is not None and len(body) else None
    if call is None:
        return _fault("INVALID_XML", "No operation in the SOAP body")
    op = call.tag.split("}")[-1]
    if not sb.app.count_extra_call(f"metadata.{op}"):
        return _fault("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
    if op in ("createMetadata", "upsertMetadata", "updateMetadata"):
        items = call.findall(f"{{{MD}}}metadata")
        if len(items) > MAX_COMPONENTS:
            return _fault("EXCEEDED_ID_LIMIT",
                          f"Metadata calls are limited to {MAX_COMPONENTS} components")
        results = [_save(sb, item, op) for item in items]
        return _envelope(f"{op}Response", "".join(results))
    if op == "readMetadata":
        type_ = _text(call, "type")
        names = [n.text or "" for n in call.findall(f"{{{MD}}}fullNames")]
        records = "".join(_read(sb, type_, n) for n in names)
        return _envelope("readMetadataResponse", f"<result>{records}</result>")
    return _fault("UNKNOWN_EXCEPTION", f"Operation {op} is not emulated by the sandbox")


def _save(sb: SalesforceSandbox, item: ET.Element, op: str) -> str:
    kind = (item.get(f"{{{XSI}}}type") or "").split(":")[-1]
    full = _text(item, "fullName")
    if kind == "PermissionSet":
        for perm in item.findall(f"{{{MD}}}fieldPermissions"):
            if _text(perm, "readable") == "true":
                sb.store.grant_field(_text(perm, "field"))
        return _result(full, None)
    if kind != "CustomField":
        return _result(full, ("INVALID_TYPE", f"The sandbox does not emulate {kind} metadata"))
    m = _NAME.match(full)
    obj = sb.store.object_name(m.group(1)) if m else None
    if m is None or obj is None:
        return _result(full, ("INVALID_CROSS_REFERENCE_KEY",
                              f"In field: fullName - no CustomObject named {full.split('.')[0]}"))
    name = m.group(2)
    exists = sb.store.field(obj, name) is not None or name in sb.store.hidden.get(obj, {})
    if exists and op == "createMetadata":
        return _result(full, ("DUPLICATE_DEVELOPER_NAME",
                              f"There is already a field named {name[:-3]} on {obj}."))
    try:
        fdef = _field_def(item, name)
    except ValueError as exc:
        return _result(full, ("FIELD_INTEGRITY_EXCEPTION", str(exc)))
    sb.store.define_custom_field(obj, fdef, visible=sb.grant_new_fields or exists)
    return _result(full, None)


def _field_def(item: ET.Element, name: str) -> FieldDef:
    md_type = _text(item, "type")
    if md_type not in _TYPES:
        raise ValueError(f"Unsupported or missing field type: {md_type!r}")
    label = _text(item, "label")
    if not label:
        raise ValueError("Field Label: You must enter a value")
    ftype, length = _TYPES[md_type]
    raw_length = _text(item, "length")
    if raw_length:
        length = int(raw_length)
    if md_type in ("Text", "LongTextArea") and not length:
        raise ValueError("Length: You must enter a value")
    if md_type == "LongTextArea" and not _text(item, "visibleLines"):
        raise ValueError("# Visible Lines: You must enter a value")
    precision = int(_text(item, "precision") or 0)
    scale = int(_text(item, "scale") or 0)
    if md_type in ("Number", "Currency", "Percent") and not precision:
        precision = 18
    return FieldDef(name, ftype, label, length=length, custom=True,
                    precision=precision, scale=scale, nillable=ftype != "boolean")


def _read(sb: SalesforceSandbox, type_: str, full: str) -> str:
    m = _NAME.match(full)
    obj = sb.store.object_name(m.group(1)) if m else None
    fdef = None
    if m is not None and obj is not None and type_ == "CustomField":
        fdef = sb.store.field(obj, m.group(2)) or sb.store.hidden.get(obj, {}).get(m.group(2))
    if fdef is None:
        # A missing component comes back as an empty record, not an error.
        return f'<records xsi:type="{escape(type_)}"/>'
    md_type = _REVERSE.get(fdef.type, "Text")
    if fdef.type == "textarea":
        md_type = "LongTextArea" if fdef.is_long_text else "TextArea"
    parts = [f"<fullName>{escape(full)}</fullName>", f"<label>{escape(fdef.label)}</label>"]
    if fdef.length and md_type in ("Text", "LongTextArea"):
        parts.append(f"<length>{fdef.length}</length>")
    if fdef.precision:
        parts += [f"<precision>{fdef.precision}</precision>", f"<scale>{fdef.scale}</scale>"]
    parts.append(f"<type>{md_type}</type>")
    return f'<records xsi:type="CustomField">{"".join(parts)}</records>'


def _text(el: ET.Element, tag: str) -> str:
    found = el.find(f"{{{MD}}}{tag}")
    return (found.text or "").strip() if found is not None else ""


def _result(full: str, error: tuple[str, str] | None) -> str:
    if error is None:
        return f"<result><fullName>{escape(full)}</fullName><success>true</success></result>"
    code, message = error
    return (
        f"<result><errors><message>{escape(message)}</message><statusCode>{code}</statusCode>"
        f"</errors><fullName>{escape(full)}</fullName><success>false</success></result>"
    )


def _envelope(tag: str, inner: str) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
        f' xmlns="{MD}" xmlns:xsi="{XSI}"><soapenv:Body>'
        f"<{tag}>{inner}</{tag}></soapenv:Body></soapenv:Envelope>"
    )
    return Response(200, body.encode(), {"Content-Type": "text/xml;charset=UTF-8"})


def _fault(code: str, message: str) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
        ' xmlns:sf="http://soap.sforce.com/2006/04/metadata"><soapenv:Body><soapenv:Fault>'
        f"<faultcode>sf:{code}</faultcode><faultstring>{code}: {escape(message)}</faultstring>"
        "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
    return Response(500, body.encode(), {"Content-Type": "text/xml;charset=UTF-8"})

