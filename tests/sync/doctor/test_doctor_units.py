"""Doctor's checks without a CRM: fake connectors for failures the emulators do not stage
(a dropped connection, a connector that cannot be built), sharing policies stored in the
warehouse, and the rendering."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, update

from connectors.base import (
    ApiUsage,
    AuthFailed,
    Connector,
    FieldStatus,
    FieldUpdate,
    Page,
    TransientError,
    Watermark,
    WriteResult,
)
from schema.db import transaction
from schema.models import Partner
from schema.owned_fields import OWNED_FIELDS
from schema.records import Stream
from sync.commands.doctor import render_table
from sync.config import Config, parse_config
from sync.doctor import (
    Check,
    DoctorReport,
    check_connector,
    check_crm_sources,
    check_sharing,
    run_doctor,
)
from sync.doctor.crm import budget_check
from sync.doctor.hubspot import HUBSPOT
from sync.doctor.salesforce import SALESFORCE
from sync.logs import MASKER
from sync.partners import add_partner

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


class FakeConnector:
    """Answers like a connector; `fail_on` names the method that raises `error`."""

    name = "salesforce"

    def __init__(self, fail_on: str = "", error: Exception | None = None,
                 usage: ApiUsage | None = None) -> None:
        self.fail_on = fail_on
        self.error = error or TransientError("boom")
        self._usage = usage or ApiUsage(daily_used=10, daily_limit=1000)

    def _maybe(self, method: str) -> None:
        if self.fail_on == method:
            raise self.error

    def check(self) -> list[str]:
        self._maybe("check")
        return []

    def pull(self, stream: Stream, since: Watermark | None, until: datetime, *,
             deleted: bool = True) -> Iterator[Page]:
        self._maybe("pull")
        yield Page(stream, [], None)

    def stored_form(self, stream: Stream, values: Mapping[str, object]
                    ) -> dict[str, str | None]:
        return {}

    def write(self, stream: Stream, updates: Sequence[FieldUpdate]) -> list[WriteResult]:
        return []

    def ensure_fields(self, *, check_only: bool) -> list[FieldStatus]:
        self._maybe("ensure_fields")
        return [FieldStatus(f.stream, f.logical, f.salesforce, True, True)
                for f in OWNED_FIELDS]

    def usage(self) -> ApiUsage:
        return self._usage


def _config(**crm: Any) -> Config:
    raw: dict[str, Any] = {"crm": {"salesforce": {
        "enabled": True, "auth": "client_credentials", "instance_url": "https://x.example",
        "client_id": "id", "client_secret": "s3cr3t-value-of-the-app", **crm}}}
    return parse_config(raw, "<test>", {})


def _names(checks: Sequence[Check]) -> list[tuple[str, str]]:
    return [(c.name, c.status) for c in checks]


def test_a_healthy_connector_passes_every_line() -> None:
    checks = check_connector(FakeConnector(), _config(), NOW)
    assert all(c.status == "ok" for c in checks), checks
    assert _names(checks)[:3] == [("authentication", "ok"), ("read Account", "ok"),
                                  ("read Opportunity", "ok")]
    assert checks[-1].name == "API budget"


def test_a_dropped_connection_is_one_connection_line_then_skips() -> None:
    checks = check_connector(FakeConnector("pull", TransientError("connection reset")),
                             _config(), NOW)
    assert _names(checks) == [("connection", "fail"), ("objects readable", "skip"),
                              ("owned fields", "skip"), ("API budget", "skip")]
    assert "instance_url" in checks[0].fix


def test_an_auth_failure_raised_by_check_names_the_auth_mode_fix() -> None:
    checks = check_connector(FakeConnector("check", AuthFailed("invalid_grant")),
                             _config(auth="jwt", username="u@x", private_key_file="k.pem"),
                             NOW)
    assert checks[0].name == "authentication" and checks[0].status == "fail"
    assert "private_key_file" in checks[0].fix


def test_a_refused_field_describe_is_one_failing_line() -> None:
    checks = check_connector(FakeConnector("ensure_fields", TransientError("describe 500")),
                             _config(), NOW)
    assert ("owned fields", "fail") in _names(checks)


def test_a_connector_that_cannot_be_built_is_a_line_not_a_traceback() -> None:
    def build(config: Config, source: str) -> Sequence[Connector]:
        raise FileNotFoundError("k.pem")

    checks = check_crm_sources(_config(), build, NOW)
    assert _names(checks) == [("connector", "fail")]
    assert "cannot set up the connector: k.pem" in checks[0].detail


@pytest.mark.parametrize(("used", "status"), [(100, "ok"), (399, "ok"), (400, "warn"),
                                              (500, "fail"), (900, "fail")])
def test_budget_thresholds_follow_max_api_share(used: int, status: str) -> None:
    check = budget_check("salesforce", SALESFORCE,
                         ApiUsage(daily_used=used, daily_limit=1000, daily_cap=500))
    assert check.status == status, check


def test_no_reported_limit_is_not_a_failure() -> None:
    assert budget_check("hubspot", HUBSPOT, ApiUsage()).status == "ok"


def test_a_stored_sharing_policy_with_an_unknown_level_fails(
        new_database: Callable[..., Engine]) -> None:
    engine = new_database()
    with transaction(engine) as session:
        add_partner(session, "p-kite", "Kite", now=NOW)
    with transaction(engine) as session:  # as a hand edit in SQL would leave it
        session.execute(update(Partner).where(Partner.id == "p-kite")
                        .values(share={"customer": "everything", "leads": "full"}))
    checks = check_sharing(Config(), engine)
    assert _names(checks) == [("policies", "fail")]
    assert "warehouse partner p-kite: customer = 'everything' is not a level" in \
        checks[0].detail
    assert "'leads' is not a population" in checks[0].detail
    good = new_database()
    with transaction(good) as session:
        add_partner(session, "p-kite", "Kite", share={"prospect": "hidden"}, now=NOW)
    assert _names(check_sharing(Config(), good)) == [("policies", "ok")]


def test_secrets_are_masked_in_every_line(tmp_path: Path) -> None:
    MASKER.add(["s3cr3t-value-of-the-app"])
    leaky = FakeConnector("pull", TransientError("POST failed: s3cr3t-value-of-the-app"))
    config = replace(_config(), warehouse=replace(Config().warehouse,
                                                  url=f"sqlite:///{tmp_path / 'x.db'}"))
    report = run_doctor(config, build=lambda c, s: [leaky], now=NOW)
    rendered = render_table(report) + str(report.as_dict())
    assert "s3cr3t-value-of-the-app" not in rendered
    assert "***" in rendered


def test_the_report_is_ok_only_when_nothing_fails_or_is_skipped() -> None:
    ok = Check("a", "b", "ok", "")
    assert DoctorReport([ok, Check("a", "c", "warn", "")]).ok
    assert not DoctorReport([ok, Check("a", "c", "skip", "")]).ok
    assert not DoctorReport([ok, Check("a", "c", "fail", "")]).ok
    assert DoctorReport([ok]).as_dict()["counts"] == {"ok": 1, "warn": 0, "fail": 0, "skip": 0}


def test_an_invalid_config_stops_doctor_with_the_key_and_exit_code_2(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from sync.cli import cli

    config = tmp_path / "ecosync.toml"
    config.write_text('[crm.hubspot]\nenabled = true\naccess_token = "${NOT_SET_TOKEN}"\n',
                      encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(config), "doctor", "--format", "json"],
                                env={"NOT_SET_TOKEN": None})
    assert result.exit_code == 2
    assert "key 'crm.hubspot.access_token' refers to environment variable ${NOT_SET_TOKEN}" \
        in result.output
    assert "Traceback" not in result.output


def test_on_sqlite_the_lock_file_must_be_creatable(tmp_path: Path) -> None:
    from sync.doctor import check_lock_file

    def config(url: str, lock: Path) -> Config:
        return parse_config({"warehouse": {"url": url}, "daemon": {"lock_file": str(lock)}},
                            "<test>", {})

    sqlite = f"sqlite:///{tmp_path / 'wh.db'}"
    ok = check_lock_file(config(sqlite, tmp_path / "state" / "ecosync.lock"))
    assert ok is not None and ok.status == "ok"
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    bad = check_lock_file(config(sqlite, blocker / "ecosync.lock"))
    assert bad is not None and bad.status == "fail"
    assert "daemon.lock_file" in bad.fix
    # PostgreSQL elects the leader with an advisory lock: no file, no line.
    assert check_lock_file(config("postgresql+psycopg://u@h/db", blocker / "x.lock")) is None


def test_each_crm_supplies_its_objects_and_fixes_whatever_its_source_is_named() -> None:
    """The checks come from the CRM's profile, found by its config section: a Salesforce
    source named 'sf-prod' and a HubSpot source named 'salesforce' each get their own."""
    renamed = FakeConnector("check", AuthFailed("invalid_grant"))
    renamed.name = "sf-prod"
    checks = check_connector(renamed, _config(name="sf-prod"), NOW)
    assert checks[0].area == "sf-prod"
    assert "crm.salesforce.client_id" in checks[0].fix

    hubspot = FakeConnector()  # named "salesforce", configured as the HubSpot source
    config = parse_config({"crm": {"hubspot": {"enabled": True, "name": "salesforce",
                                               "access_token": "pat-xyz"}}}, "<test>", {})
    names = _names(check_connector(hubspot, config, NOW))
    assert names[:3] == [("authentication", "ok"), ("read companies", "ok"),
                         ("read deals", "ok")]
    hubspot.fail_on, hubspot.error = "pull", AuthFailed("401 expired")
    failed = check_connector(hubspot, config, NOW)
    assert failed[0].name == "authentication"
    assert "crm.hubspot.access_token" in failed[0].fix
