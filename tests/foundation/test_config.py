"""Config: typed, validated, secrets from the environment, one clear line on any mistake."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sync.cli import cli
from sync.config import Config, load_config, masked, parse_config
from sync.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ecosync.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_no_file_means_built_in_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ECOSYNC_CONFIG", raising=False)
    config = load_config(None)
    assert config == Config()
    assert config.warehouse.url == "sqlite:///ecosync.db"


def test_example_config_documents_a_valid_config() -> None:
    env = {"SF_CLIENT_ID": "id", "SF_CLIENT_SECRET": "s3cr3t-value", "HUBSPOT_TOKEN": "pat-xyz"}
    config = load_config(EXAMPLE, env=env)
    assert config.crm.salesforce.client_secret == "s3cr3t-value"
    assert [p.id for p in config.partners]


def test_every_key_of_the_config_is_documented_in_the_example() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")

    def keys(obj: object, prefix: str = "") -> list[str]:
        out = []
        for key, value in masked(obj).items() if isinstance(obj, Config) else obj.items():  # type: ignore[union-attr]
            if key == "source_path":
                continue
            if isinstance(value, dict) and key not in {"share", "columns", "population_weights",
                                                       "static_rates", "account_fields",
                                                       "opportunity_fields", "company_properties",
                                                       "deal_properties"}:
                out += keys(value, f"{prefix}{key}.")
            else:
                out.append(key)
        return out

    missing = [k for k in keys(Config()) if k not in text]
    assert missing == []


def test_env_interpolation_resolves_secrets(tmp_path: Path) -> None:
    path = write(tmp_path, '[crm.hubspot]\nenabled = true\naccess_token = "${HS_TOKEN}"\n')
    config = load_config(path, env={"HS_TOKEN": "pat-na1-abc"})
    assert config.crm.hubspot.access_token == "pat-na1-abc"
    assert masked(config)["crm"]["hubspot"]["access_token"] == "***"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[warehouse]\nurll = 'x'\n", "unknown key 'warehouse.urll'"),
        ("[daemon]\ninterval_seconds = 'soon'\n", "key 'daemon.interval_seconds' must be int"),
        ("[crm.hubspot]\naccess_token = '${NOT_SET_ANYWHERE}'\n",
         "environment variable ${NOT_SET_ANYWHERE}, which is not set"),
        ("[warehouse\n", "not valid TOML"),
        ("[crm.salesforce]\nenabled = true\nauth = 'jwt'\n", "crm.salesforce.client_id"),
        ("[[partners]]\nid = 'p1'\nname = 'P'\nshare = {customer = 'everything'}\n",
         "partners[0].share.customer"),
        ("[attribution]\namount_model = 'magic'\n", "attribution.amount_model"),
    ],
)
def test_bad_config_is_one_clear_line_with_exit_code_2(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    assert expected in err.value.message
    assert str(path) in err.value.message

    result = CliRunner().invoke(cli, ["--config", str(path), "status"], env={})
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ")


def test_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "missing.toml"), "status"])
    assert result.exit_code == 2
    assert "config file not found" in result.output


def test_config_from_environment_variable_path(tmp_path: Path) -> None:
    path = write(tmp_path, "[daemon]\ninterval_seconds = 5\n")
    result = CliRunner().invoke(cli, ["config", "check"], env={"ECOSYNC_CONFIG": str(path)})
    assert result.exit_code == 0, result.output
    assert '"interval_seconds": 5' in result.output


def test_config_check_masks_every_secret(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[crm.salesforce]\nenabled = true\nauth = 'client_credentials'\n"
        "instance_url = 'https://acme.my.salesforce.com'\nclient_id = 'cid'\n"
        "client_secret = '${SF_SECRET}'\n",
    )
    result = CliRunner().invoke(cli, ["--config", str(path), "config", "check"],
                                env={"SF_SECRET": "very-secret-value-42"})
    assert result.exit_code == 0, result.output
    assert "very-secret-value-42" not in result.output
    assert '"client_secret": "***"' in result.output


def test_parse_rejects_wrong_nested_types() -> None:
    with pytest.raises(ConfigError, match=r"matching\.generic_domains"):
        parse_config({"matching": {"generic_domains": "gmail.com"}})
