"""Secrets fed through config never reach log output, whatever shape they take."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

from click.testing import CliRunner

from sync.cli import cli
from sync.config import load_config
from sync.logs import MASKER, configure_logging, get_logger

TOKEN = "pat-na1-11112222-3333-4444-5555-666677778888"


def test_token_from_config_never_reaches_the_output(tmp_path: Path) -> None:
    path = tmp_path / "ecosync.toml"
    path.write_text('[crm.hubspot]\nenabled = true\naccess_token = "${HS_TOKEN}"\n')
    config = load_config(path, env={"HS_TOKEN": TOKEN})
    out = io.StringIO()
    configure_logging("json", secrets=config.secrets(), stream=out)
    log = get_logger("test")
    log.info("calling hubspot", token=TOKEN, nested={"headers": {"x": f"Bearer {TOKEN}"}})
    log.warning(f"request failed for {TOKEN[:20]}… full={TOKEN}")
    try:
        raise RuntimeError(f"401 with token {TOKEN}")
    except RuntimeError:
        log.exception("boom")
    logging.getLogger("urllib3").error("header Authorization: Bearer %s", TOKEN)
    text = out.getvalue()
    assert TOKEN not in text
    assert text.count("***") >= 4
    for line in text.splitlines():
        if line.startswith("{"):
            json.loads(line)  # JSON lines stay valid JSON after masking
    MASKER.clear()


def test_credential_shapes_are_masked_without_being_configured() -> None:
    out = io.StringIO()
    configure_logging("json", stream=out)
    get_logger().info(
        "x", url="https://h/?access_token=abcdef123456&x=1",
        body="password=hunter2hunter2", sid="00D5e000000abcd!AQ8AQP0x1y2z3a4b5c6d7e8f9g0h",
    )
    text = out.getvalue()
    assert "abcdef123456" not in text and "hunter2hunter2" not in text
    assert "AQ8AQP0x1y2z3a4b5c6d7e8f9g0h" not in text


def test_cli_with_secret_in_env_never_prints_it(tmp_path: Path) -> None:
    path = tmp_path / "ecosync.toml"
    path.write_text(
        f"[warehouse]\nurl = 'sqlite:///{tmp_path}/w.db'\n"
        "[crm.hubspot]\nenabled = true\naccess_token = \"${HS_TOKEN}\"\n"
    )
    runner = CliRunner()
    for args in (["config", "check"], ["db", "upgrade"], ["status", "--format", "json"]):
        result = runner.invoke(cli, ["--config", str(path), "--log-format", "json", *args],
                               env={"HS_TOKEN": TOKEN})
        assert result.exit_code == 0, result.output
        assert TOKEN not in result.output
    MASKER.clear()
