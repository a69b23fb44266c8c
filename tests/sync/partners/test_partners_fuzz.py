"""Hypothesis: whatever a partner file contains, an import either succeeds or raises one
UserError; never another exception (a traceback for the user). Runs on PostgreSQL too when
ECOSYNC_TEST_DATABASE_URL is set, where NUL characters and VARCHAR limits bite."""

from __future__ import annotations

import csv
import io
import itertools
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from schema.db import transaction
from sync.errors import UserError
from sync.partners import ImportResult, import_partner_csv

HEADERS = ["name", "Company", "domain", "website", "URL", "population", "Status",
           "owner_name", "owner_email", "external_id", "ID", "duns", "notes", ""]
CELLS = st.one_of(
    st.sampled_from(["", "customer", "Open Opportunity", "prospect", "acme.com",
                     "https://www.Shop.Acme.co.uk/about?x=1", "münchen.de", "gmail.com",
                     "10.0.0.1", "a@b.co", "not-an-email", "=HYPERLINK(\"x\")", "123-456-789",
                     "Acme, Inc.", "\"quoted\"", "line\nbreak", "A" * 1200, "Ünïcödé ✓"]),
    st.text(max_size=30),
)
_counter = itertools.count()


def _import(engine: Engine, path: Path, skip_invalid: bool) -> ImportResult | None:
    message = ""
    try:
        with transaction(engine) as session:
            return import_partner_csv(session, "p-acme", path, skip_invalid=skip_invalid,
                                      force=True)
    except UserError as exc:
        message = exc.message
    assert str(path) in message  # every file error names the file
    return None


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.lists(st.sampled_from(HEADERS), min_size=1, max_size=8),
       rows=st.lists(st.lists(CELLS, max_size=9), max_size=8), skip_invalid=st.booleans())
def test_structured_csvs_import_or_fail_cleanly(engine: Engine, tmp_path: Path,
                                                header: list[str], rows: list[list[str]],
                                                skip_invalid: bool) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    path = tmp_path / f"f{next(_counter)}.csv"
    path.write_text(buf.getvalue(), encoding="utf-8")
    result = _import(engine, path, skip_invalid)
    if result is not None:
        assert result.rows + len({p.line for p in result.skipped}) <= len(rows)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400), skip_invalid=st.booleans())
def test_arbitrary_bytes_import_or_fail_cleanly(engine: Engine, tmp_path: Path,
                                                data: bytes, skip_invalid: bool) -> None:
    path = tmp_path / f"b{next(_counter)}.csv"
    path.write_bytes(b"name,domain,population\n" + data)
    _import(engine, path, skip_invalid)
