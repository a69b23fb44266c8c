"""`ecosync doctor` against the sandbox emulators through the real connectors: a provisioned
sandbox passes; each broken setup fails on the line that names it, with its fix."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from doctor_support import Setup, failing, find, lines

from sandbox.world import ENV_HS_TOKEN, ENV_SF_SECRET
from sync.health import DaemonState, serve_health


def test_a_provisioned_sandbox_passes(provisioned: Setup) -> None:
    result, report = provisioned.doctor()
    assert result.exit_code == 0, result.output
    assert report["ok"] is True
    assert failing(report) == []
    assert report["counts"]["skip"] == 0
    areas = {c["area"] for c in report["checks"]}
    assert {"config", "warehouse", "salesforce", "hubspot", "sharing", "daemon"} <= areas
    # Every owned field of both CRMs has its own passing line.
    assert len([c for c in report["checks"] if c["name"].startswith("field ")]) == 16
    for area in ("salesforce", "hubspot"):
        assert find(report, area, "authentication")["status"] == "ok"
        assert "daily calls used" in find(report, area, "API budget")["detail"]
    assert find(report, "salesforce", "read Account")["status"] == "ok"
    assert find(report, "hubspot", "read deals")["status"] == "ok"


def test_the_table_says_ready_and_never_prints_a_secret(provisioned: Setup) -> None:
    result = provisioned.table()
    assert result.exit_code == 0, result.output
    assert "ready: " in result.output and "NOT ready" not in result.output
    assert "[ ok ] salesforce" in result.output
    for secret in provisioned.world.env().values():
        assert secret not in result.output


def test_a_missing_salesforce_field_fails_its_line_with_the_ensure_fix(
        provisioned: Setup) -> None:
    assert provisioned.world.salesforce is not None
    provisioned.world.salesforce.remove_field("Account", "Ecosystem_Partners__c")
    result, report = provisioned.doctor()
    assert result.exit_code == 1
    assert failing(report) == [("salesforce", "field Account.Ecosystem_Partners__c")]
    line = find(report, "salesforce", "field Account.Ecosystem_Partners__c")
    assert line["detail"] == "overlap_partners: does not exist"
    assert "`ecosync fields ensure --source salesforce`" in line["fix"]
    # The pull refuses the object while an owned field is missing; that is not a read
    # permission problem, so that line is skipped rather than failed with the wrong fix.
    assert find(report, "salesforce", "read Account")["status"] == "skip"


def test_the_table_prints_the_failing_line_then_its_fix(provisioned: Setup) -> None:
    assert provisioned.world.salesforce is not None
    provisioned.world.salesforce.remove_field("Account", "Ecosystem_Partners__c")
    result = provisioned.table()
    assert result.exit_code == 1
    out = result.output.splitlines()
    at = next(i for i, line in enumerate(out) if line.startswith("[FAIL] salesforce")
              and "field Account.Ecosystem_Partners__c: overlap_partners: does not exist" in line)
    assert out[at + 1].strip().startswith("fix: run `ecosync fields ensure --source salesforce`")
    assert out[-1].startswith("NOT ready: ")


def test_a_read_only_salesforce_field_fails_with_the_field_level_security_fix(
        provisioned: Setup) -> None:
    assert provisioned.world.salesforce is not None
    provisioned.world.salesforce.set_field_updateable("Opportunity", "Sourcing_Partner__c",
                                                      False)
    result, report = provisioned.doctor()  # also proves stdout stays one JSON document
    assert result.exit_code == 1
    assert failing(report) == [("salesforce", "field Opportunity.Sourcing_Partner__c")]
    line = find(report, "salesforce", "field Opportunity.Sourcing_Partner__c")
    assert "read-only for the integration user" in line["detail"]
    assert "Edit access to Opportunity.Sourcing_Partner__c" in line["fix"]
    assert "field-level security" in line["fix"]
    assert "docs/salesforce-admin.md" in line["fix"]


def test_a_missing_hubspot_property_fails_its_line(provisioned: Setup) -> None:
    assert provisioned.world.hubspot is not None
    provisioned.world.hubspot.remove_property("companies", "ecosystem_partner_contacts")
    result, report = provisioned.doctor()
    assert result.exit_code == 1
    assert failing(report) == [("hubspot", "field companies.ecosystem_partner_contacts")]
    line = find(report, "hubspot", "field companies.ecosystem_partner_contacts")
    assert line["detail"] == "overlap_contacts: does not exist"
    assert "`ecosync fields ensure --source hubspot`" in line["fix"]
    assert "'ecosync' property group" in line["fix"]


def test_a_read_only_hubspot_property_fails_with_the_remap_fix(provisioned: Setup) -> None:
    assert provisioned.world.hubspot is not None
    provisioned.world.hubspot.set_property_read_only("deals", "sourcing_partner")
    result, report = provisioned.doctor()
    assert result.exit_code == 1
    assert failing(report) == [("hubspot", "field deals.sourcing_partner")]
    line = find(report, "hubspot", "field deals.sourcing_partner")
    assert "read-only" in line["detail"]
    assert "crm.hubspot.deal_properties.sourcing_partner" in line["fix"]


@pytest.mark.parametrize(("variable", "source", "fix_part"), [
    (ENV_HS_TOKEN, "hubspot", "crm.hubspot.access_token"),
    (ENV_SF_SECRET, "salesforce", "client_secret against the Connected App"),
])
def test_a_bad_credential_fails_authentication_and_skips_the_rest(
        provisioned: Setup, variable: str, source: str, fix_part: str) -> None:
    bogus = "pat-na1-00000000-bogus-credential-4711"
    provisioned.env[variable] = bogus
    result, report = provisioned.doctor()
    assert result.exit_code == 1
    assert failing(report) == [(source, "authentication")]
    line = find(report, source, "authentication")
    assert fix_part in line["fix"]
    skipped = [c["name"] for c in lines(report, "skip") if c["area"] == source]
    assert skipped == ["objects readable", "owned fields", "API budget"]
    other = "salesforce" if source == "hubspot" else "hubspot"
    assert find(report, other, "authentication")["status"] == "ok"
    assert bogus not in result.output
    table = provisioned.table()
    assert bogus not in table.output


def test_an_unreachable_database_fails_the_warehouse_line(provisioned: Setup) -> None:
    # The README's test install is `.[dev]`; the PostgreSQL driver comes with `.[postgres]`.
    pytest.importorskip("psycopg", reason="needs the driver: pip install -e '.[postgres]'")
    with socket.socket() as sock:  # a port with nothing listening: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provisioned.warehouse_url = (f"postgresql+psycopg://ecosync:hunter2-db-secret@127.0.0.1:"
                                 f"{port}/ecosync?connect_timeout=3")
    result, report = provisioned.doctor()
    assert result.exit_code == 1
    assert ("warehouse", "reachable") in failing(report)
    line = find(report, "warehouse", "reachable")
    assert line["detail"].startswith("cannot connect to postgresql+psycopg://ecosync:***@")
    assert "warehouse.url" in line["fix"]
    assert "hunter2-db-secret" not in result.output
    # The CRM checks do not need the warehouse and still run.
    assert find(report, "salesforce", "authentication")["status"] == "ok"


def test_a_missing_sqlite_warehouse_is_not_created(provisioned: Setup, tmp_path: Path) -> None:
    target = tmp_path / "absent" / "ecosync.db"
    provisioned.warehouse_url = f"sqlite:///{target}"
    result, report = provisioned.doctor()
    assert result.exit_code == 1
    line = find(report, "warehouse", "reachable")
    assert line["detail"] == f"no SQLite warehouse at {target}"
    assert "`ecosync db upgrade`" in line["fix"]
    assert not target.exists() and not target.parent.exists()


def test_a_warehouse_behind_the_head_asks_for_db_upgrade(provisioned: Setup,
                                                          tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    provisioned.warehouse_url = f"sqlite:///{empty}"
    result, report = provisioned.doctor()
    assert result.exit_code == 1
    assert failing(report) == [("warehouse", "migrations")]
    line = find(report, "warehouse", "migrations")
    assert line["detail"].startswith("at revision none, this ecosync needs ")
    assert "`ecosync db upgrade`" in line["fix"]


def test_a_bad_partner_file_fails_with_its_line_numbers(provisioned: Setup) -> None:
    partner_id, path = next(iter(provisioned.world.partner_files.items()))
    text = path.read_text(encoding="utf-8").splitlines()
    header = text[0].split(",")
    row = ["" for _ in header]
    row[header.index("name")] = "Bad Row Inc"
    row[header.index("population")] = "friends"
    path.write_text("\n".join([*text[:2], ",".join(row), *text[2:]]) + "\n", encoding="utf-8")
    result, report = provisioned.doctor()
    assert result.exit_code == 1
    assert failing(report) == [(f"partner {partner_id}", "file")]
    line = find(report, f"partner {partner_id}", "file")
    assert "1 invalid row(s): line 3, column 'population': unknown population;" \
        in line["detail"]
    assert "friends" not in line["detail"] and "Bad Row Inc" not in line["detail"]
    assert f"`ecosync partners import {partner_id} FILE`" in line["fix"]


def test_a_missing_partner_file_fails(provisioned: Setup) -> None:
    partner_id, path = next(iter(provisioned.world.partner_files.items()))
    path.unlink()
    result, report = provisioned.doctor()
    assert result.exit_code == 1
    line = find(report, f"partner {partner_id}", "file")
    assert line["detail"] == f"{path} does not exist"
    assert "relative paths start at the config file's folder" in line["fix"]


def test_an_api_budget_over_ecosyncs_share_fails(provisioned: Setup) -> None:
    assert provisioned.world.salesforce is not None
    provisioned.world.salesforce.api_usage = 60_000  # of 100,000; ecosync may use 50,000
    result, report = provisioned.doctor()
    assert result.exit_code == 1
    assert failing(report) == [("salesforce", "API budget")]
    line = find(report, "salesforce", "API budget")
    assert "crm.salesforce.max_api_share" in line["detail"] + line["fix"]


def test_an_api_budget_near_ecosyncs_share_warns_but_passes(provisioned: Setup) -> None:
    assert provisioned.world.salesforce is not None
    provisioned.world.salesforce.api_usage = 42_000  # 84% of the 50,000 ecosync may use
    result, report = provisioned.doctor()
    assert result.exit_code == 0, json.dumps(report, indent=1)
    line = find(report, "salesforce", "API budget")
    assert line["status"] == "warn"
    assert "of 100,000 daily calls used; ecosync may use up to 50,000" in line["detail"]


def test_a_busy_health_port_fails_and_a_running_daemon_only_warns(provisioned: Setup) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", provisioned.health_port))
        sock.listen()
        result, report = provisioned.doctor()
    assert result.exit_code == 1
    line = find(report, "daemon", "health port")
    assert line["status"] == "fail"
    assert f"cannot bind 127.0.0.1:{provisioned.health_port}" in line["detail"]
    assert "daemon.health_port" in line["fix"]

    server = serve_health("127.0.0.1", provisioned.health_port, DaemonState(interval_s=60))
    try:
        result, report = provisioned.doctor()
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 0, json.dumps(report, indent=1)
    assert find(report, "daemon", "health port")["status"] == "warn"


def test_an_owned_property_of_the_wrong_type_is_a_readiness_failure(provisioned: Setup) -> None:
    hubspot = provisioned.world.hubspot
    assert hubspot is not None
    hubspot.remove_property("companies", "ecosystem_overlap_count")
    hubspot.define_property("companies", "ecosystem_overlap_count", type="string")
    result, report = provisioned.doctor()
    assert result.exit_code == 1
    assert failing(report) == [("hubspot", "readiness")]
    line = find(report, "hubspot", "readiness")
    assert "'ecosystem_overlap_count'" in line["detail"]
    assert "has type 'string', ecosync writes 'number'" in line["detail"]


def test_a_missing_referring_partner_field_is_a_readiness_failure(provisioned: Setup) -> None:
    assert provisioned.world.salesforce is not None
    provisioned.world.salesforce.remove_field("Opportunity", "Referring_Partner__c")
    result, report = provisioned.doctor()
    assert result.exit_code == 1
    line = find(report, "salesforce", "readiness")
    assert "Opportunity.Referring_Partner__c does not exist " \
           "(crm.salesforce.referring_partner_field)" in line["detail"]
    assert find(report, "salesforce", "read Opportunity")["status"] == "skip"


def test_hubspot_oauth_passes_and_a_revoked_refresh_token_fails_with_the_oauth_fix(
        provisioned: Setup) -> None:
    hubspot = provisioned.world.hubspot
    assert hubspot is not None
    oauth = (f'client_id = "{hubspot.client_id}"\nclient_secret = "${{HS_CLIENT_SECRET}}"\n'
             'refresh_token = "${HS_REFRESH_TOKEN}"\n')
    provisioned.edits.append(('auth = "private_app"', f'auth = "oauth"\n{oauth}'))
    provisioned.env.update({"HS_CLIENT_SECRET": hubspot.client_secret,
                            "HS_REFRESH_TOKEN": hubspot.refresh_token})
    result, report = provisioned.doctor()
    assert result.exit_code == 0, json.dumps(report, indent=1)
    assert find(report, "hubspot", "authentication")["detail"] == "oauth auth accepted"

    provisioned.env["HS_REFRESH_TOKEN"] = "rt-revoked-0000000000000000"
    result, report = provisioned.doctor()
    assert failing(report) == [("hubspot", "authentication")]
    assert "re-authorize" in find(report, "hubspot", "authentication")["fix"]
    assert "rt-revoked-0000000000000000" not in result.output


def test_salesforce_jwt_passes_and_a_missing_key_file_fails_with_the_jwt_fix(
        provisioned: Setup, tmp_path: Path) -> None:
    from sandbox.salesforce.client import private_key_pem

    salesforce = provisioned.world.salesforce
    assert salesforce is not None
    key = tmp_path / "ecosync-sf.key"
    key.write_text(private_key_pem(), encoding="utf-8")
    jwt = (f'auth = "jwt"\nusername = "{salesforce.username}"\n'
           f'private_key_file = "{key}"\n')
    provisioned.edits.append(('auth = "client_credentials"', jwt))
    result, report = provisioned.doctor()
    assert result.exit_code == 0, json.dumps(report, indent=1)
    assert find(report, "salesforce", "authentication")["detail"] == "jwt auth accepted"

    key.unlink()
    result, report = provisioned.doctor()
    assert failing(report) == [("salesforce", "authentication")]
    line = find(report, "salesforce", "authentication")
    assert f"cannot read crm.salesforce.private_key_file '{key}'" in line["detail"]
    assert "private_key_file (the key of the certificate uploaded to the app)" in line["fix"]
