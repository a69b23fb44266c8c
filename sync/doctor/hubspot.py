"""Doctor's knowledge of HubSpot: objects, auth modes and the admin guide's sections."""

from __future__ import annotations

from schema.records import Stream
from sync.doctor.profile import CrmDoctor

HS_GUIDE = "docs/hubspot-admin.md"


def _field_fix(source: str, obj: str, api_name: str, logical: str, exists: bool) -> str:
    if not exists:
        return (f"run `ecosync fields ensure --source {source}`, or create it in the 'ecosync' "
                f"property group ({HS_GUIDE}, 'Owned properties')")
    key = "company_properties" if obj == "companies" else "deal_properties"
    return (f"HubSpot reports {obj}.{api_name} as read-only (a calculated or app-locked "
            f"property); delete it and run `ecosync fields ensure --source {source}`, or map "
            f"crm.hubspot.{key}.{logical} to a writable property ({HS_GUIDE}, 'Owned "
            "properties')")


HUBSPOT = CrmDoctor(
    section="hubspot",
    settings=lambda config: config.crm.hubspot,
    objects={Stream.ACCOUNTS: "companies", Stream.OPPORTUNITIES: "deals"},
    guide=HS_GUIDE,
    auth_fix={
        "private_app": (
            "copy the private app's access token again into the variable that "
            "crm.hubspot.access_token names (it changes when rotated) and confirm the app is "
            f"installed ({HS_GUIDE}, 'Private app')"),
        "oauth": (
            "check crm.hubspot.client_id, client_secret and refresh_token; a refresh token "
            "dies when the app is uninstalled from the portal: re-authorize to get a new one "
            f"({HS_GUIDE}, 'OAuth app')"),
    },
    connection_fix=("check base_url, the network path to it (proxy, firewall) and ca_bundle "
                    "under [crm.hubspot]"),
    read_fix=lambda obj: f"add the crm.objects.{obj}.read scope to the app ({HS_GUIDE}, 'Scopes')",
    fields_fix=f"see {HS_GUIDE}, 'Owned properties'",
    field_fix=_field_fix,
    read_only_for="apps (HubSpot)",
    no_daily_limit=("the platform reported no daily limit on these calls (OAuth apps on "
                    "HubSpot get none); the burst pacing still applies"),
)
