"""`ecosync match explain` follows the sharing policy in every format: a partner that names no
population never appears; one that keeps some population unnamed shows only "no match among
the rows it shares by name", the same whether it does not match or matches a row it does not
name; a partner named throughout shows everything, near misses included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from matching_world import World
from sqlalchemy import Engine

from sync.cli import cli

MIXED = {"customer": "full", "open_opportunity": "names", "prospect": "counts"}
CONFIG = """
[warehouse]
url = "{url}"

[[partners]]
id = "p-open"
name = "Open Partner"

[[partners]]
id = "p-mixed"
name = "Mixed Partner"
share = {{ customer = "full", open_opportunity = "names", prospect = "counts" }}

[[partners]]
id = "p-counts"
name = "Counting Partner"
share = {{ customer = "counts", open_opportunity = "counts", prospect = "counts" }}

[[partners]]
id = "p-hidden"
name = "Secret Partner"
share = {{ customer = "hidden", open_opportunity = "hidden", prospect = "names" }}
"""
# Row keys and owners of rows whose population is not shared by name: never shown.
UNSHARED = ("mixed-prospect-row", "counts-row", "hidden-row", "near-miss-row",
            "Counting Partner", "p-counts", "Count Owner", "Hidden Owner")


@pytest.fixture
def config(tmp_path: Path, warehouse: Engine) -> Path:
    world = World(warehouse)
    world.partner("p-open", "Open Partner")
    world.partner("p-mixed", "Mixed Partner", share=MIXED)
    world.partner("p-counts", "Counting Partner")
    world.partner("p-hidden", "Secret Partner")
    world.account("001A", "Acme Inc", "https://acme.com")  # matches unshared rows only
    world.account("001B", "Bravo Ltd", "https://bravo.io")  # no partner row at all
    world.account("001C", "Initech Systems", None)  # near misses in unnamed rows
    world.account("001D", "Delta Corp", "https://delta.dev")  # matches Mixed's customer row
    world.partner_account("p-mixed", "Acme", "acme.com", "prospect",
                          row_key="mixed-prospect-row", owner_name="Count Owner")
    world.partner_account("p-counts", "Acme", "acme.com", "customer", row_key="counts-row",
                          owner_name="Count Owner")
    world.partner_account("p-hidden", "Acme", "acme.com", "customer", row_key="hidden-row",
                          owner_name="Hidden Owner")
    world.partner_account("p-mixed", "Initech Sys", None, "prospect", row_key="near-miss-row")
    world.partner_account("p-mixed", "Delta", "delta.dev", "customer", row_key="delta-row",
                          owner_name="Dana Open")
    world.partner_account("p-open", "Initech Sys", None, "prospect", row_key="open-near-row")
    world.match()
    assert {k for k, _ in world.overlaps().items()} >= {("001A", "p-mixed"),
                                                         ("001A", "p-counts"),
                                                         ("001A", "p-hidden")}
    path = tmp_path / "ecosync.toml"
    path.write_text(CONFIG.format(url=warehouse.url.render_as_string(hide_password=False)),
                    encoding="utf-8")
    return path


def _explain(config: Path, account: str, fmt: str) -> str:
    result = CliRunner().invoke(cli, ["--config", str(config), "--log-format", "json", "match",
                                      "explain", account, "--format", fmt])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_no_format_names_what_a_partner_does_not_share(config: Path, fmt: str) -> None:
    for account in ("001A", "001B", "001C", "001D"):
        out = _explain(config, account, fmt)
        assert [u for u in UNSHARED if u in out] == [], (account, out)


def test_a_match_on_an_unnamed_row_looks_like_no_match(config: Path) -> None:
    def mixed(account: str) -> dict[str, object]:
        rows = json.loads(_explain(config, account, "json"))
        # p-hidden names its prospects, so it may appear: its hidden customer row may not.
        assert {r["partner_id"] for r in rows} == {"p-open", "p-mixed", "p-hidden"}
        hidden = next(r for r in rows if r["partner_id"] == "p-hidden")
        assert hidden["matched"] is False and hidden["partner_row_key"] is None
        return next(r for r in rows if r["partner_id"] == "p-mixed")

    matched_unnamed, no_row = mixed("001A"), mixed("001B")
    assert matched_unnamed == no_row
    assert matched_unnamed["matched"] is False
    assert matched_unnamed["reason"] == "no match among the rows it shares by name"
    assert mixed("001C") == no_row  # a near miss on an unnamed row says nothing either


def test_what_a_partner_shares_by_name_is_explained_in_full(config: Path) -> None:
    rows = {r["partner_id"]: r for r in json.loads(_explain(config, "001D", "json"))}
    assert rows["p-mixed"]["matched"] is True
    assert rows["p-mixed"]["population"] == "customer"
    assert rows["p-mixed"]["partner_row_key"] == "delta-row"
    near = {r["partner_id"]: r for r in json.loads(_explain(config, "001C", "json"))}
    assert "open-near-row" in str(near["p-open"]["reason"])  # named everywhere: near misses
