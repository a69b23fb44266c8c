"""The daemon meets a partner file that went bad between ticks: it logs the rejection (naming
the partner and line), keeps the partner's last good snapshot, and keeps ticking."""

from __future__ import annotations

from pathlib import Path

import pytest
from reliability_support import captured_logs, make_env
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from sandbox.world import running_world
from schema.models import PartnerAccount
from sync.daemon import run_daemon

pytestmark = pytest.mark.slow


def partner_rows(engine: Engine, partner_id: str) -> int:
    with Session(engine) as s:
        return int(s.execute(select(func.count()).select_from(PartnerAccount)
                             .where(PartnerAccount.partner_id == partner_id)).scalar_one())


def test_the_daemon_survives_a_bad_partner_file(tmp_path: Path, warehouse: Engine) -> None:
    with running_world(tmp_path / "world", seed=6, accounts=100, opportunities=150,
                       partners=3) as world:
        url = warehouse.url.render_as_string(hide_password=False)
        toml = world.config_toml(url) + (
            f"\n[daemon]\ninterval_seconds = 1\njitter_seconds = 0\n"
            f"lock_file = \"{tmp_path / 'ecosync.lock'}\"\n")
        env = make_env(world, warehouse, config_toml=toml)
        victim = world.seed.partners[0].id
        with captured_logs() as cap:
            first = run_daemon(warehouse, env.config, max_ticks=1, health=False,
                               connectors=env.connectors)
            assert first.ticks == 1 and first.tick_failures == 0
            good = partner_rows(warehouse, victim)
            assert good > 0
            path = world.partner_files[victim]
            text = path.read_text(encoding="utf-8").splitlines()
            text.insert(3, "only,two")  # a ragged row on line 4
            text.append('"an unclosed quote,customer')
            path.write_text("\n".join(text) + "\n", encoding="utf-8")
            # Between ticks the CRMs' clocks move on by the interval; no wall-clock wait.
            later = run_daemon(warehouse, env.config, max_ticks=3, health=False,
                               connectors=env.connectors, pause=world.advance_clocks)
        assert later.ticks == 3 and later.tick_failures == 0
        assert partner_rows(warehouse, victim) == good, "the last good snapshot must stay"
        rejected = [e for e in cap.events() if e.get("event") == "partner file rejected"]
        assert rejected and all(e.get("partner") == victim for e in rejected)
        assert all("line " in str(e.get("error")) and e.get("run_id") for e in rejected)
        assert "Traceback" not in cap.text()
