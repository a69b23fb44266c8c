"""Doctor's checks of the host: the partner files the daemon watches, the health port it
binds and, on SQLite, the lock file of its leader election."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import urllib.request
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from sync.config import Config, PartnerConfig
from sync.doctor.checks import PARTNER_GUIDE, Check
from sync.errors import UserError

# How many bad rows of a partner file to quote; the import command lists all of them.
MAX_ROW_PROBLEMS = 5


def partner_path(config: Config, path: str) -> Path:
    """As the daemon resolves it: relative paths are relative to the config file's folder."""
    candidate = Path(path)
    if candidate.is_absolute() or not config.source_path or config.source_path.startswith("<"):
        return candidate
    return Path(config.source_path).parent / candidate


def check_partner(config: Config, partner: PartnerConfig) -> Check:
    from sync.matching.keys import generic_domains
    from sync.partners.staging import check_partner_file

    area = f"partner {partner.id}"
    if partner.source in ("salesforce", "hubspot"):
        from sync.partners.crm_source import check_partner_crm

        ok, detail = check_partner_crm(partner)
        return Check(area, "crm", "ok" if ok else "fail", detail,
                     "" if ok else f"fix the partner's [partners.crm] credentials (their "
                     f"{partner.source}, read-only access to accounts and opportunities) "
                     f"({PARTNER_GUIDE}, 'Partner CRM sources')")
    if partner.source != "csv":
        return Check(area, "source", "ok",
                     f"source '{partner.source}': no file to check")
    if not partner.path:
        return Check(area, "file", "ok",
                     "no watched file; its list comes from `ecosync partners import`")
    path = partner_path(config, partner.path)
    if not path.exists():
        return Check(area, "file", "fail", f"{path} does not exist",
                     "fix the partner's path (relative paths start at the config file's "
                     f"folder) or put the file there ({PARTNER_GUIDE})")
    if not path.is_file():
        return Check(area, "file", "fail", f"{path} is not a file", "point path at the CSV file")
    try:
        result = check_partner_file(path, encoding=partner.encoding,
                                    columns=partner.columns or None,
                                    generic=generic_domains(config.matching.generic_domains),
                                    keep=MAX_ROW_PROBLEMS)
    except UserError as exc:
        return Check(area, "file", "fail", exc.message,
                     f"fix the file or the partner's encoding/columns in the config "
                     f"({PARTNER_GUIDE})")
    except OSError as exc:
        return Check(area, "file", "fail", f"{path}: cannot read ({exc.strerror})",
                     "give the ecosync user read access to the file")
    if result.problems:
        shown = "; ".join(p.describe() for p in result.problems)
        more = result.invalid_rows - len({p.line for p in result.problems})
        tail = f"; and {more} more" if more > 0 else ""
        if partner.skip_invalid:
            return Check(area, "file", "warn",
                         f"{path}: {result.rows:,} valid rows imported, {result.invalid_rows} "
                         f"invalid row(s) skipped (skip_invalid = true): {shown}{tail}",
                         "fix those rows in the partner's file to import them too")
        return Check(area, "file", "fail",
                     f"{path}: {result.invalid_rows} invalid row(s): {shown}{tail}",
                     "fix those rows: the daemon imports a watched file only when every row "
                     f"is valid, or set skip_invalid = true on the partner to import the "
                     f"others (`ecosync partners import {partner.id} FILE` lists them all)")
    return Check(area, "file", "ok", f"{path}: {result.rows:,} valid rows")


def _ecosync_health_answers(host: str, port: int) -> bool:
    """True if what holds the port is an ecosync daemon (its /healthz answers ok/unhealthy)."""
    probe_host = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104
    probe_host = f"[{probe_host}]" if ":" in probe_host else probe_host
    try:
        with urllib.request.urlopen(f"http://{probe_host}:{port}/healthz",
                                    timeout=1) as resp:
            body = resp.read(200).decode("utf-8", "replace")
    except OSError as exc:
        body = ""
        read = getattr(exc, "read", None)  # an HTTPError (503 unhealthy) still has a body
        if callable(read):
            with contextlib.suppress(Exception):
                body = read(200).decode("utf-8", "replace")
    return bool(body.startswith(("ok:", "unhealthy:")))


def check_health_port(config: Config) -> Check:
    """The daemon can bind its health/metrics port. Bound the way the daemon binds it
    (SO_REUSEADDR, as http.server does), so a socket in TIME_WAIT is not a false alarm."""
    host, port = config.daemon.health_host, config.daemon.health_port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    where = f"{host}:{port}"
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE and _ecosync_health_answers(host, port):
            return Check("daemon", "health port", "warn",
                         f"{where} is served by a running ecosync daemon",
                         "fine if that is this host's daemon; a second one here needs another "
                         "daemon.health_port")
        reason = exc.strerror or str(exc)
        return Check("daemon", "health port", "fail", f"cannot bind {where} ({reason})",
                     "stop the process holding it (`ss -ltnp` shows it) or set "
                     "daemon.health_port / daemon.health_host in the config")
    return Check("daemon", "health port", "ok", f"{where} is free")


def check_lock_file(config: Config) -> Check | None:
    """On SQLite, leader election is a file lock the daemon creates next to its state; a
    directory it cannot write stops `ecosync run` at start. PostgreSQL needs no file."""
    try:
        backend = make_url(config.warehouse.url).get_backend_name()
    except ArgumentError:
        return None  # the warehouse line already says what is wrong with the URL
    if backend != "sqlite":
        return None
    path = Path(config.daemon.lock_file)
    folder = next((p for p in (path.parent, *path.parent.parents) if p.exists()), Path("."))
    if path.exists() and not os.access(path, os.W_OK):
        return Check("daemon", "lock file", "fail", f"{path} is not writable",
                     "give the ecosync user write access to it, or set daemon.lock_file "
                     "under a directory it owns (/var/lib/ecosync)")
    if not path.exists() and not (folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)):
        return Check("daemon", "lock file", "fail", f"cannot create {path} (no write access "
                     f"to {folder})", "set daemon.lock_file under a directory the ecosync "
                     "user owns (/var/lib/ecosync)")
    return Check("daemon", "lock file", "ok", f"{path} can be created and locked")


