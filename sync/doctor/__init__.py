"""`ecosync doctor`: everything a production run needs, checked, with a fix for each failure.

Each check yields `Check` lines (area, name, status, detail, fix). The checks only read: the
warehouse is never created or migrated, no CRM field is created, no record is written, and a
partner file is parsed but not imported. Any exception a check meets becomes a failing line,
never a traceback, so one broken thing cannot hide the state of the others.

- `checks`: the Check line and the report;
- `warehouse`: the config, the warehouse and the sharing policies stored in it;
- `crm`: each CRM source through the connector contract, with what differs per CRM supplied
  by that CRM's profile (`salesforce`, `hubspot`, shaped by `profile`);
- `host`: partner files, the health port, the leader lock file.

Secrets: no line quotes a config value of a secret key, and every line is passed through the
log masker (which knows the secrets in force) before it is rendered, in case an error message
from a client library echoes one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import Engine

from connectors.base import Connector
from sync.config import Config
from sync.doctor.checks import Check, DoctorReport
from sync.doctor.crm import check_connector, check_crm_sources
from sync.doctor.host import check_health_port, check_lock_file, check_partner
from sync.doctor.warehouse import check_config, check_sharing, check_warehouse

__all__ = ["Check", "DoctorReport", "check_config", "check_connector", "check_crm_sources",
           "check_health_port", "check_lock_file", "check_partner", "check_sharing",
           "check_warehouse", "run_doctor"]


def run_doctor(config: Config, *, engine: Engine | None = None,
               build: Callable[[Config, str], Sequence[Connector]] | None = None,
               now: datetime | None = None) -> DoctorReport:
    """Every check, in checklist order. An engine passed in is the caller's to dispose; one
    made here is disposed here."""
    report = DoctorReport()
    report.checks += check_config(config)
    warehouse_checks, usable = check_warehouse(config, engine)
    try:
        report.checks += warehouse_checks
        report.checks += check_crm_sources(config, build, now)
        report.checks += [check_partner(config, p) for p in config.partners]
        report.checks += check_sharing(config, usable)
        report.checks.append(check_health_port(config))
        lock = check_lock_file(config)
        if lock is not None:
            report.checks.append(lock)
    finally:
        if usable is not None and usable is not engine:
            usable.dispose()
    report.checks = [c.masked() for c in report.checks]
    return report
