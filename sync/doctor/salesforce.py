"""Doctor's knowledge of Salesforce: objects, auth modes and the admin guide's sections."""

from __future__ import annotations

from schema.records import Stream
from sync.doctor.profile import CrmDoctor

SF_GUIDE = "docs/salesforce-admin.md"


def _field_fix(source: str, obj: str, api_name: str, logical: str, exists: bool) -> str:
    if not exists:
        return (f"run `ecosync fields ensure --source {source}`, or create it in Setup → "
                f"Object Manager with the type in the guide ({SF_GUIDE}, 'Owned fields')")
    return (f"give the integration user Edit access to {obj}.{api_name}: field-level "
            f"security in its permission set ({SF_GUIDE}, 'Permission set')")


SALESFORCE = CrmDoctor(
    section="salesforce",
    settings=lambda config: config.crm.salesforce,
    objects={Stream.ACCOUNTS: "Account", Stream.OPPORTUNITIES: "Opportunity"},
    guide=SF_GUIDE,
    auth_fix={
        "client_credentials": (
            "check crm.salesforce.client_id and client_secret against the Connected App, that "
            "its client credentials flow is enabled with a 'Run As' integration user, and that "
            f"instance_url is your My Domain URL ({SF_GUIDE}, 'Client credentials')"),
        "jwt": (
            "check crm.salesforce.client_id (the Connected App's consumer key), username (the "
            "integration user, pre-authorized for the app) and private_key_file (the key of the "
            f"certificate uploaded to the app) ({SF_GUIDE}, 'JWT bearer')"),
        "password": (
            "check crm.salesforce.username, password and security_token (reset the token "
            "after a password change) and login_url (https://test.salesforce.com for "
            f"sandboxes) ({SF_GUIDE}, 'Username and password')"),
        "session": (
            "the session id has expired or was revoked; issue a new one, or switch to "
            f"client_credentials or jwt auth for a daemon ({SF_GUIDE}, 'Auth modes')"),
    },
    connection_fix=("check instance_url, the network path to it (proxy, firewall) and "
                    "ca_bundle under [crm.salesforce]"),
    read_fix=lambda obj: (f"give the integration user Read on {obj} and its fields in the "
                          f"permission set ({SF_GUIDE}, 'Permission set')"),
    fields_fix=f"see {SF_GUIDE}, 'Owned fields'",
    field_fix=_field_fix,
    read_only_for="the integration user",
    no_daily_limit="the platform reported no daily limit",
)
