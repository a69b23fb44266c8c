"""What both sides of a run must agree on, and the envelope every message carries."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from sync.config import Config, PsiConfig
from sync.errors import UserError
from sync.psi.messages import FORMAT, VERSION, Kind, Message, refuse
from sync.psi.protocol import PROTOCOL, Params
from sync.psi.sets import KINDS


def ours(config: PsiConfig) -> Params:
    return Params(PROTOCOL, config.data_structure, config.false_positive_rate)


def header(kind: Kind, run_id: str, params: Params, organisation: str, now: datetime,
           sections: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"format": FORMAT, "version": VERSION, "kind": kind.value, "run_id": run_id,
            "created_at": now.isoformat(), "from": organisation, "params": params.as_dict(),
            "keys": [k.value for k in KINDS], "sections": sections, **extra}


def organisation(config: Config) -> str:
    """Our name in every message: [psi] organisation, else [exchange] organisation (one name
    for both, as partners know us)."""
    name = config.psi.organisation.strip() or config.exchange.organisation.strip()
    if not name:
        raise UserError("[psi] organisation is not set: every private-matching message says "
                        "who sent it; set organisation = \"Your Company\" under [psi] (or "
                        "[exchange]) in the config")
    return name


def check(message: Message, expected: Params) -> None:
    """Refuse a message whose parameters differ from `expected`, naming the first that does."""
    got = message.header["params"]
    for name, want in expected.as_dict().items():
        value = got.get(name)
        same = (isinstance(value, int | float) and not isinstance(value, bool)
                and math.isclose(float(value), float(want), rel_tol=1e-12)
                if isinstance(want, float) else value == want)
        if not same:
            raise refuse(message.path, f"parameter {name} is {value!r} in the message but "
                         f"{want!r} here", "both sides must run the same protocol with the "
                         "same [psi] data_structure and false_positive_rate; agree on them "
                         "with the partner and make a new request")
    if message.header.get("keys") != [k.value for k in KINDS]:
        raise refuse(message.path, f"key kinds {message.header.get('keys')!r} differ from "
                     f"ours ({', '.join(KINDS)})", "both sides need the same ecosync "
                     "private-matching version; upgrade the older one")
