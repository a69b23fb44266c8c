"""The example files in deploy/ are valid: the systemd unit (systemd-analyze verify where
available, its structure always), the Prometheus rules and scrape config (promtool where
available, their YAML structure always, and every metric they use is one the daemon
exports), the env file and production config, the PostgreSQL setup, the log shipper."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
import tomllib
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from docs_support import DEPLOY, ROOT
from sqlalchemy import Engine

from sandbox.world import running_world
from sync.cli import cli
from sync.config import Config, parse_config
from sync.daemon import run_daemon
from sync.health import render_metrics
from sync.partners.staging import read_partner_csv

UNIT = DEPLOY / "ecosync.service"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
SCRAPE = DEPLOY / "prometheus" / "scrape.yml"


def _ecosync_executable() -> str:
    found = shutil.which("ecosync") or str(Path(sys.executable).parent / "ecosync")
    assert Path(found).exists(), "the ecosync console script is not installed"
    return found


# ---- systemd --------------------------------------------------------------------------------


def _unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=True, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    return parser


def test_the_unit_runs_the_daemon_as_a_dedicated_user_with_secrets_from_a_file() -> None:
    unit = _unit()
    assert set(unit.sections()) == {"Unit", "Service", "Install"}
    service = unit["Service"]
    exec_start = service["ExecStart"].split()
    assert Path(exec_start[0]).name == "ecosync" and exec_start[-1] == "run"
    assert "--log-format" in exec_start and "json" in exec_start
    assert service["User"] == "ecosync" and service["Group"] == "ecosync"
    assert service["EnvironmentFile"] == "/etc/ecosync/ecosync.env"
    assert service["Environment"] == "ECOSYNC_CONFIG=/etc/ecosync/ecosync.toml"
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == "2"  # sync.errors.ConfigError.exit_code
    # SIGTERM must leave the daemon its shutdown grace before SIGKILL.
    assert int(service["TimeoutStopSec"].rstrip("s")) > Config().daemon.shutdown_grace_seconds
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_the_config_error_exit_code_is_the_one_the_unit_does_not_restart() -> None:
    from sync.errors import ConfigError

    assert ConfigError.exit_code == 2


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    # verify checks that ExecStart exists: point it at this environment's ecosync.
    text = UNIT.read_text(encoding="utf-8").replace("/opt/ecosync/venv/bin/ecosync",
                                                    _ecosync_executable())
    unit = tmp_path / "ecosync.service"
    unit.write_text(text, encoding="utf-8")
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                          text=True, timeout=60, check=False)
    # verify exits 0 on unknown keys and bad values; it only warns, naming the file.
    ours = [line for line in (done.stdout + done.stderr).splitlines() if "ecosync" in line]
    assert done.returncode == 0 and ours == [], done.stdout + done.stderr


def test_the_admin_wrapper_is_valid_shell_passing_its_arguments_to_ecosync() -> None:
    wrapper = DEPLOY / "ecosync-admin"
    assert os.access(wrapper, os.X_OK)
    subprocess.run(["sh", "-n", str(wrapper)], check=True, timeout=30)
    text = wrapper.read_text(encoding="utf-8")
    assert '"$ECOSYNC_BIN" "$@"' in text
    assert "EnvironmentFile=$ECOSYNC_ENV_FILE" in text
    unit = _unit()["Service"]
    assert "/etc/ecosync/ecosync.env" in text and "/etc/ecosync/ecosync.toml" in text
    assert unit["WorkingDirectory"] in text


# ---- Prometheus -----------------------------------------------------------------------------


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_alert_rules_have_the_prometheus_rule_file_structure() -> None:
    data = _load(ALERTS)
    assert list(data) == ["groups"]
    names = set()
    for group in data["groups"]:
        assert set(group) <= {"name", "interval", "rules", "limit"} and group["name"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "keep_firing_for", "labels",
                                 "annotations"}, rule
            assert rule["alert"] not in names, f"duplicate alert {rule['alert']}"
            names.add(rule["alert"])
            assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rule["alert"])
            assert isinstance(rule["expr"], str) and rule["expr"].count("(") == \
                rule["expr"].count(")")
            if "for" in rule:
                assert re.fullmatch(r"\d+[smhd]", rule["for"]), rule["for"]
            assert rule["labels"]["severity"] in {"critical", "warning", "info"}
            assert rule["annotations"]["summary"]
            assert 'job="ecosync"' in rule["expr"]
    assert {"EcosyncNoLeader", "EcosyncNoSuccessfulTick", "EcosyncDeadLettersHigh",
            "EcosyncApiBudgetHigh"} <= names


def test_the_scrape_config_targets_the_daemons_health_port() -> None:
    data = _load(SCRAPE)
    (job,) = [j for j in data["scrape_configs"] if j["job_name"] == "ecosync"]
    assert job["metrics_path"] == "/metrics"
    port = Config().daemon.health_port
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    assert len(targets) == 2 and all(t.endswith(f":{port}") for t in targets)
    production = tomllib.loads((DEPLOY / "ecosync.toml").read_text(encoding="utf-8"))
    assert production["daemon"]["health_port"] == port
    assert production["daemon"]["health_host"] != "127.0.0.1"  # reachable by Prometheus


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_checks_the_rules_and_the_scrape_config(tmp_path: Path) -> None:
    subprocess.run(["promtool", "check", "rules", str(ALERTS)], check=True, timeout=60,
                   capture_output=True)
    # The scrape config names the rules file where Prometheus keeps it; check it here.
    rules = tmp_path / "ecosync-alerts.yml"
    shutil.copy(ALERTS, rules)
    config = tmp_path / "prometheus.yml"
    config.write_text(SCRAPE.read_text(encoding="utf-8").replace(
        "/etc/prometheus/rules/ecosync-alerts.yml", str(rules)), encoding="utf-8")
    done = subprocess.run(["promtool", "check", "config", str(config)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_unit_tests_of_the_alert_rules_pass() -> None:
    done = subprocess.run(["promtool", "test", "rules", "alerts_test.yml"],
                          cwd=ALERTS.parent, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def _exported_metric_names(tmp_path: Path, engine: Engine) -> set[str]:
    """What one leader tick against the sandbox exports on /metrics."""
    url = engine.url.render_as_string(hide_password=False)
    with running_world(tmp_path / "world", accounts=30, opportunities=30, partners=2) as world:
        config = world.config(url)
        from sync.wiring import build_connectors

        connectors = build_connectors(config)
        for connector in connectors:
            connector.ensure_fields(check_only=False)
        lock = tmp_path / "ecosync.lock"
        config = parse_config(
            {**tomllib.loads(world.config_toml(url)), "daemon": {"lock_file": str(lock)}},
            "<test>", world.env())
        state = run_daemon(engine, config, max_ticks=1, connectors=connectors, health=False)
    assert state.ticks == 1, "the tick did not run"
    text = render_metrics(state)
    return set(re.findall(r"^# TYPE (ecosync_[a-z_]+) ", text, re.MULTILINE))


def test_every_metric_in_the_alert_rules_is_exported_by_the_daemon(
        tmp_path: Path, new_database: Callable[..., Engine]) -> None:
    exported = _exported_metric_names(tmp_path, new_database())
    assert {"ecosync_leader", "ecosync_pulled_total", "ecosync_data_lag_seconds",
            "ecosync_api_budget_used_ratio"} <= exported
    used = set(re.findall(r"\b(ecosync_[a-z_]+)\b", ALERTS.read_text(encoding="utf-8")))
    used -= {"ecosync_alerts"} if "ecosync_alerts" in exported else set()
    assert used - exported == set(), f"alerts use metrics the daemon does not export: " \
                                     f"{sorted(used - exported)} (exported: {sorted(exported)})"
    documented = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    for name in exported:
        assert f"`{name}" in documented, f"docs/operations.md does not list {name}"


# ---- env file, production config, PostgreSQL, logs ------------------------------------------


def _env_example() -> dict[str, str]:
    out = {}
    for line in (DEPLOY / "ecosync.env.example").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, sep, value = line.partition("=")
            assert sep and re.fullmatch(r"[A-Z_][A-Z0-9_]*", name), line
            assert not value.startswith(("'", '"')), "systemd would keep the quotes"
            out[name] = value
    return out


def test_the_production_config_loads_with_the_env_file_and_names_no_secret() -> None:
    env = _env_example()
    text = (DEPLOY / "ecosync.toml").read_text(encoding="utf-8")
    settings = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    referenced = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)\}", settings))
    assert referenced == set(env), "env file and config must name the same variables"
    config = parse_config(tomllib.loads(text), str(DEPLOY / "ecosync.toml"), env)
    assert config.warehouse.url.startswith("postgresql+psycopg://ecosync:")
    assert config.crm.salesforce.enabled and config.crm.hubspot.enabled
    for secret in config.secrets():
        assert secret not in text


def test_the_postgres_setup_creates_the_role_and_database_the_config_uses() -> None:
    sql = (DEPLOY / "postgres" / "setup.sql").read_text(encoding="utf-8")
    assert "CREATE ROLE ecosync LOGIN" in sql
    assert "CREATE DATABASE ecosync OWNER ecosync" in sql
    url = tomllib.loads((DEPLOY / "ecosync.toml").read_text(encoding="utf-8"))["warehouse"]["url"]
    assert url.startswith("postgresql+psycopg://ecosync:") and url.endswith("/ecosync")


@pytest.mark.postgres
@pytest.mark.skipif(shutil.which("psql") is None or not os.environ.get(
    "ECOSYNC_TEST_DATABASE_URL"), reason="needs psql and ECOSYNC_TEST_DATABASE_URL (PostgreSQL)")
def test_the_postgres_setup_runs_and_ecosync_migrates_as_that_role(tmp_path: Path) -> None:
    from sqlalchemy.engine import make_url

    admin = make_url(os.environ["ECOSYNC_TEST_DATABASE_URL"])
    # Unique names, so the test never touches a real `ecosync` role or database.
    name = f"ecosync_t{uuid.uuid4().hex[:8]}"
    sql = re.sub(r"\becosync(?=\b|_reader)", name,
                 (DEPLOY / "postgres" / "setup.sql").read_text(encoding="utf-8"))
    script = tmp_path / "setup.sql"
    script.write_text(sql, encoding="utf-8")
    env = {**os.environ, "PGPASSWORD": admin.password or ""}
    psql = ["psql", "-h", admin.host or "127.0.0.1", "-p", str(admin.port or 5432), "-U",
            admin.username or "postgres", "-d", admin.database or "postgres", "-X", "-q"]
    password = "t-" + uuid.uuid4().hex
    try:
        subprocess.run([*psql, "-v", f"ecosync_password='{password}'", "-f", str(script)],
                       check=True, env=env, timeout=120, capture_output=True)
        config = tmp_path / "ecosync.toml"
        config.write_text(
            f'[warehouse]\nurl = "postgresql+psycopg://{name}:${{PW}}@{admin.host}:'
            f'{admin.port or 5432}/{name}"\n', encoding="utf-8")
        runner = CliRunner()
        upgraded = runner.invoke(cli, ["--config", str(config), "db", "upgrade"],
                                 env={"PW": password})
        assert upgraded.exit_code == 0, upgraded.output
        current = runner.invoke(cli, ["--config", str(config), "db", "current"],
                                env={"PW": password})
        assert current.output.strip().endswith("(head)"), current.output
        assert password not in upgraded.output + current.output
        tables = subprocess.run(
            [*psql, "-d", name, "-tAc",
             f"select count(*) from pg_tables where schemaname = '{name}' "
             f"and tableowner = '{name}'"],
            check=True, env=env, timeout=60, capture_output=True, text=True)
        assert int(tables.stdout.strip()) > 5
    finally:
        for statement in (f"DROP DATABASE IF EXISTS {name}", f"DROP ROLE IF EXISTS {name}_reader",
                          f"DROP ROLE IF EXISTS {name}"):
            subprocess.run([*psql, "-c", statement], env=env, timeout=60, check=False,
                           capture_output=True)


def test_the_log_shipper_reads_the_units_journal_and_parses_json() -> None:
    data = _load(DEPLOY / "logging" / "vector.yaml")
    source = data["sources"]["ecosync_journal"]
    assert source["type"] == "journald" and source["include_units"] == ["ecosync.service"]
    (transform,) = data["transforms"].values()
    assert transform["inputs"] == ["ecosync_journal"] and "parse_json" in transform["source"]
    assert all(sink["inputs"] == list(data["transforms"]) for sink in data["sinks"].values())


# ---- partner data walkthrough ---------------------------------------------------------------


def test_the_example_partner_file_is_valid() -> None:
    result = read_partner_csv(ROOT / "docs" / "examples" / "partners.csv")
    assert result.problems == []
    assert len(result.rows) == 8
    assert {r.population.value for r in result.rows} == {"customer", "open_opportunity",
                                                         "prospect"}
    assert any(r.duns for r in result.rows)


def test_the_partner_data_walkthrough_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    """The commands of docs/partner-data.md, run for real on a fresh SQLite warehouse."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ECOSYNC_CONFIG", raising=False)
    (tmp_path / "ecosync.toml").write_text(
        f'[warehouse]\nurl = "sqlite:///{tmp_path / "wh.db"}"\n', encoding="utf-8")
    example = str(ROOT / "docs" / "examples" / "partners.csv")
    steps = [
        ["db", "upgrade"],
        ["partners", "add", "p-northbeam", "--name", "Northbeam Consulting", "--kind",
         "services", "--share", "prospect=counts"],
        ["partners", "import", "p-northbeam", example],
        ["partners", "list"],
        ["match", "run"],
        ["report", "overlaps"],
        ["report", "accounts", "--format", "csv", "--limit", "200"],
        ["doctor", "--format", "json"],
    ]
    runner = CliRunner()
    for step in steps:
        result = runner.invoke(cli, ["--log-format", "json", *step])
        expected = 1 if step[0] == "doctor" else 0  # no CRM enabled: doctor says so
        assert result.exit_code == expected, f"ecosync {' '.join(step)}: {result.output}"
    listed = runner.invoke(cli, ["partners", "list", "--format", "json"])
    assert '"rows": 8' in listed.output


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _section_block(doc: Path, heading: str) -> list[str]:
    """The command lines of the first shell block under `heading`."""
    lines = doc.read_text(encoding="utf-8").splitlines()
    start = lines.index(heading)
    fence = next(i for i in range(start, len(lines)) if lines[i].startswith("```sh"))
    end = next(i for i in range(fence + 1, len(lines)) if lines[i].startswith("```"))
    return [line for line in lines[fence + 1:end] if line.strip()]


@pytest.mark.parametrize(("doc", "heading", "count"), [
    ("operations.md", "## First run", 5),
    ("salesforce-admin.md", "## Check the setup", 5),
    ("hubspot-admin.md", "## Check the setup", 5),
])
def test_a_documented_setup_sequence_runs_against_the_sandbox(
        doc: str, heading: str, count: int, tmp_path: Path,
        new_database: Callable[..., Engine], monkeypatch: pytest.MonkeyPatch) -> None:
    """The guides' setup sequences, command by command, on both emulators (owned fields
    provisioned first, as the admin guides have the admins do)."""
    import shlex

    monkeypatch.chdir(tmp_path)
    block = _section_block(ROOT / "docs" / doc, heading)
    assert len(block) == count
    engine = new_database(migrate=False)
    url = engine.url.render_as_string(hide_password=False)
    with running_world(tmp_path / "world", accounts=30, opportunities=30, partners=2) as world:
        config = tmp_path / "ecosync.toml"
        port = _free_port()  # doctor checks the health port is free
        config.write_text(world.config_toml(url) + f"\n[daemon]\nhealth_port = {port}\n"
                          f'lock_file = "{tmp_path / "ecosync.lock"}"\n', encoding="utf-8")
        runner = CliRunner()

        def run(args: list[str]) -> Any:
            return runner.invoke(cli, ["--config", str(config), "--log-format", "json", *args],
                                 env=world.env())

        for line in block:
            args = shlex.split(line, comments=True)
            assert args[0] in ("ecosync", "ecosync-admin")
            if args[1:3] == ["fields", "ensure"]:
                assert run(["fields", "ensure"]).exit_code == 0  # the admin guides' step
            result = run(args[1:])
            assert result.exit_code == 0, f"{line}: {result.output}"


def test_the_day_to_day_commands_run_after_a_backfill(
        tmp_path: Path, new_database: Callable[..., Engine],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/operations.md 'Day-to-day commands' on a warehouse the sandbox filled, with the
    placeholders (record id, partner, file) replaced by real ones; plus the overrides and
    attribution commands of the guides."""
    import shlex

    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from schema.models import Account, ChangeLog, Opportunity

    monkeypatch.chdir(tmp_path)
    block = _section_block(ROOT / "docs" / "operations.md", "## Day-to-day commands")
    engine = new_database()
    url = engine.url.render_as_string(hide_password=False)
    with running_world(tmp_path / "world", accounts=40, opportunities=60, partners=2) as world:
        config = tmp_path / "ecosync.toml"
        config.write_text(world.config_toml(url) + f"\n[daemon]\nhealth_port = {_free_port()}\n"
                          f'lock_file = "{tmp_path / "ecosync.lock"}"\n', encoding="utf-8")
        runner = CliRunner()

        def run(*args: str) -> Any:
            result = runner.invoke(cli, ["--config", str(config), "--log-format", "json",
                                         *args], env={**world.env(), "ECOSYNC_USER": "ops"})
            assert result.exit_code == 0, f"ecosync {' '.join(args)}: {result.output}"
            return result

        run("fields", "ensure")
        run("backfill", "--no-progress")
        with Session(engine) as session:
            written = session.scalar(select(ChangeLog.external_id).where(
                ChangeLog.source == "salesforce", ChangeLog.stream == "accounts").limit(1))
            closed = session.scalar(select(Opportunity.external_id).where(
                Opportunity.source == "salesforce", Opportunity.status == "won").limit(1))
            other = session.scalar(select(Account.external_id).where(
                Account.source == "salesforce", Account.external_id != written).limit(1))
        assert written and closed and other
        partner_id, partner_file = next(iter(world.partner_files.items()))
        for line in block:
            text = (line.replace("001XXXXXXXXXXXXXXX", written)
                    .replace("/etc/ecosync/partners/northbeam.csv", str(partner_file))
                    .replace("p-northbeam", partner_id))
            run(*shlex.split(text, comments=True)[1:])
        # docs/partner-data.md 'Overrides' and docs/attribution.md, on real records.
        run("match", "pin", other, partner_id, "--reason", "confirmed with partner AM")
        run("match", "block", written, partner_id, "--reason", "different company, same name")
        run("match", "revoke", "1")
        run("match", "explain", other, "--format", "json")
        run("attribution", "explain", closed)
        run("attribution", "explain", f"salesforce:{closed}", "--format", "json")
        run("attribution", "restamp", closed, "--reason", "referral recorded late by the AE")
        run("report", "attribution", "--section", "revenue")
        run("report", "working-set")


BACKUP = DEPLOY / "backup"


def test_the_backup_units_dump_as_the_service_user_every_night() -> None:
    service = configparser.ConfigParser(strict=False, interpolation=None)
    service.optionxform = str  # type: ignore[assignment,method-assign]
    service.read_string((BACKUP / "ecosync-backup.service").read_text(encoding="utf-8"))
    section = service["Service"]
    assert section["Type"] == "oneshot" and section["User"] == "ecosync"
    assert section["EnvironmentFile"] == _unit()["Service"]["EnvironmentFile"]
    assert "pg_dump -Fc" in section["ExecStart"]
    # systemd turns $$ into $ and %% into %; what the shell then runs must be valid sh.
    shell = section["ExecStart"].split(" -c ", 1)[1].strip("'")
    shell = shell.replace("$$", "$").replace("%%", "%")
    assert "$ECOSYNC_DB_PASSWORD" in shell and "$(date -u +%Y-%m-%dT%H%M)" in shell
    subprocess.run(["sh", "-n", "-c", shell], check=True, timeout=30)
    assert "ECOSYNC_DB_PASSWORD" in _env_example()
    timer = configparser.ConfigParser(strict=True, interpolation=None)
    timer.optionxform = str  # type: ignore[assignment,method-assign]
    timer.read_string((BACKUP / "ecosync-backup.timer").read_text(encoding="utf-8"))
    assert timer["Timer"]["Persistent"] == "true" and timer["Timer"]["OnCalendar"]
    assert timer["Install"]["WantedBy"] == "timers.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verifies_the_backup_units(tmp_path: Path) -> None:
    for name in ("ecosync-backup.service", "ecosync-backup.timer"):
        shutil.copy(BACKUP / name, tmp_path / name)
    done = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "ecosync-backup.timer"),
                           str(tmp_path / "ecosync-backup.service")], capture_output=True,
                          text=True, timeout=60, check=False)
    ours = [line for line in (done.stdout + done.stderr).splitlines() if "ecosync" in line]
    assert done.returncode == 0 and ours == [], done.stdout + done.stderr
