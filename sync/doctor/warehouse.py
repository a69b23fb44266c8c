"""Doctor's checks of what ecosync keeps: the config it loaded, the warehouse (reachable, at
the migration head) and the sharing policies stored in it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from sync.config import POPULATIONS, SHARE_LEVELS, Config
from sync.doctor.checks import OPS_GUIDE, PARTNER_GUIDE, Check, first_line
from sync.doctor.crm import CRMS
from sync.errors import UserError


def check_config(config: Config) -> list[Check]:
    """The config loaded (an invalid one stops the CLI before doctor runs, with the key and
    the fix); here: where it came from, and that a CRM source is enabled at all."""
    where = config.source_path or "built-in defaults (no ecosync.toml found)"
    out = [Check("config", "valid", "ok", f"loaded from {where}")]
    enabled = [s.name for s in (crm.settings(config) for crm in CRMS) if s.enabled]
    if enabled:
        out.append(Check("config", "CRM sources", "ok", "enabled: " + ", ".join(enabled)))
    else:
        out.append(Check("config", "CRM sources", "fail", "no CRM source is enabled",
                         "set enabled = true under [crm.salesforce] and/or [crm.hubspot] "
                         "(see config.example.toml)"))
    return out



def _missing_sqlite_file(url: str) -> Path | None:
    """The SQLite file a URL names, if it does not exist yet. Connecting would create an
    empty file, and doctor must change nothing, so this is checked first."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    path = Path(database)
    return None if path.exists() else path


def check_warehouse(config: Config, engine: Engine | None = None) -> tuple[list[Check],
                                                                           Engine | None]:
    """Reachable and at the migration head; returns the engine when it is usable (an engine
    made here and not returned is disposed here)."""
    from schema.db import make_engine

    url = config.warehouse.url
    missing = _missing_sqlite_file(url)
    if missing is not None:
        return [Check("warehouse", "reachable", "fail", f"no SQLite warehouse at {missing}",
                      "run `ecosync db upgrade` to create it, or fix warehouse.url")], None
    try:
        made = make_engine(url, echo=False) if engine is None else None
    except UserError as exc:
        return [Check("warehouse", "reachable", "fail", exc.message,
                      "fix warehouse.url in the config")], None
    usable = engine or made
    assert usable is not None
    checks, ok = _warehouse_state(usable)
    if not ok and made is not None:
        made.dispose()
    return checks, usable if ok else None


def _warehouse_state(engine: Engine) -> tuple[list[Check], bool]:
    from sync.warehouse import status

    st = status(engine, runs=1)
    if not st.reachable:
        return [Check("warehouse", "reachable", "fail", f"cannot connect to {st.url}: {st.error}",
                      "check warehouse.url, that the database server is running and accepts "
                      f"this host, and the role's password ({OPS_GUIDE}, 'PostgreSQL')")], False
    out = [Check("warehouse", "reachable", "ok", st.url)]
    if st.revision != st.head:
        out.append(Check("warehouse", "migrations", "fail",
                         f"at revision {st.revision or 'none'}, this ecosync needs {st.head}",
                         "run `ecosync db upgrade` (before starting the new version)"))
        return out, False
    out.append(Check("warehouse", "migrations", "ok", f"at head {st.head}"))
    return out, True


def _share_problems(share: Any) -> list[str]:
    if not isinstance(share, dict):
        return [f"share policy is {type(share).__name__}, not a table"]
    out = []
    for population, level in share.items():
        if population not in POPULATIONS:
            out.append(f"'{population}' is not a population ({', '.join(POPULATIONS)})")
        elif level not in SHARE_LEVELS:
            out.append(f"{population} = '{level}' is not a level ({', '.join(SHARE_LEVELS)})")
    return out


def check_sharing(config: Config, engine: Engine | None) -> list[Check]:
    """Sharing policies name known partners, populations and levels: the config's (validated
    at load, re-checked here for one report) and those stored in the warehouse by
    `ecosync partners add` or edited there by hand, and every override names a partner."""
    from schema.models import MatchOverride, Partner

    problems: list[str] = []
    for partner in config.partners:
        problems += [f"config partner {partner.id}: {p}" for p in _share_problems(partner.share)]
    stored = 0
    if engine is not None:
        try:
            with engine.connect() as conn:
                rows = conn.execute(select(Partner.id, Partner.share)).all()
                known = {r.id for r in rows}
                orphans = conn.execute(
                    select(MatchOverride.partner_id).distinct()
                    .where(MatchOverride.partner_id.not_in(known) if known else
                           MatchOverride.partner_id.is_not(None))).scalars().all()
        except SQLAlchemyError as exc:
            return [Check("sharing", "policies", "fail", first_line(exc),
                          "see the warehouse lines above")]
        stored = len(rows)
        for row in rows:
            problems += [f"warehouse partner {row.id}: {p}" for p in _share_problems(row.share)]
        problems += [f"a match override names partner '{p}', which is not registered"
                     for p in orphans]
    if problems:
        return [Check("sharing", "policies", "fail", "; ".join(problems),
                      "until fixed, ecosync treats an unknown level as hidden; correct the "
                      "partner's share in the config (a partner added from the CLI: in the "
                      f"warehouse's partners table) ({PARTNER_GUIDE}, 'Sharing levels')")]
    checked = f"{len(config.partners)} in config" + (f", {stored} in the warehouse"
                                                      if engine is not None else "")
    return [Check("sharing", "policies", "ok", f"valid ({checked})")]


