"""`[[alerts]]`: credentials only from the environment, one clear error per mistake."""

from __future__ import annotations

import tomllib

import pytest

from sync.config import masked, parse_config
from sync.errors import ConfigError

ENV = {"HOOK": "https://hooks.example.com/x", "KEY": "k3y", "PLAIN": "http://insecure/x"}


def parse(body: str) -> object:
    return parse_config(tomllib.loads(body), "ecosync.toml", ENV)


GOOD = ('[[alerts]]\nname = "ops"\nkind = "webhook"\nwebhook_url = "${HOOK}"\n'
        'secret = "${KEY}"\nevents = ["ops.dead_letters"]\n')


def test_a_good_alert_parses_and_its_credentials_are_masked() -> None:
    config = parse_config(tomllib.loads(GOOD), "ecosync.toml", ENV)
    (alert,) = config.alerts
    assert alert.webhook_url == ENV["HOOK"] and alert.secret == "k3y"
    shown = masked(config)["alerts"][0]
    assert shown["webhook_url"] == "***" and shown["secret"] == "***"
    assert {"https://hooks.example.com/x", "k3y"} <= set(config.secrets())


@pytest.mark.parametrize(("body", "message"), [
    (GOOD.replace('"${HOOK}"', '"https://hooks.example.com/x"'),
     "key 'alerts[0].webhook_url' holds a credential in the file"),
    (GOOD.replace('"${KEY}"', '"k3y"'), "key 'alerts[0].secret' holds a credential"),
    (GOOD.replace('secret = "${KEY}"\n', ""), "key 'alerts[0].secret' is required"),
    (GOOD.replace('"${HOOK}"', '"${PLAIN}"'), "must be an https:// URL"),
    (GOOD.replace("ops.dead_letters", "ops.nope"), "unknown event 'ops.nope'"),
    (GOOD + 'partners = ["ghost"]\n', "names partner 'ghost'"),
    (GOOD + "digest_size = 30\n", "between 8 and 15"),
    (GOOD + GOOD, "duplicates alert name 'ops'"),
    (GOOD.replace('kind = "webhook"', 'kind = "email"'), "alerts[0].kind"),
])
def test_mistakes_end_in_one_message_naming_the_key(body: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse(body)
    assert message in err.value.message and "ecosync.toml" in err.value.message
