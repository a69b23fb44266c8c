"""Every alert body, built through sync.sharing and nothing else (DESIGN.md 5 and 12).

The outbox holds facts; a message is rendered from them at each delivery attempt, under the
partners' policies in force then, so a policy tightened after queuing still applies:
- a `hidden` partner never appears and is never counted: a message about nothing else is not
  sent at all (`None`, the event is marked suppressed);
- a `counts` partner is counted ("1 partner sharing counts only") but never named, and its
  population is not shown (a per-account population would say more than a count);
  `overlap.partner_customer_on_prospect` and the digest need a partner by name, so they are
  not sent for a counts-only partner;
- `names` shows partner and population, `full` adds the partner's account owner.
A partner credited on a stamp is shown at the population sync.attribution.credited finds; one
credited from our own referring field alone (`REFERRAL`) is named: that is our own CRM data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sync.config.alerts import EventKind
from sync.sharing import NAMED, Level, SharedOverlap, share_level, visibility

Shares = Mapping[str, tuple[str, Mapping[str, Any]]]  # partner id -> (name, share policy)
COUNTS_ONLY = "partners sharing counts only"


@dataclass(frozen=True)
class Message:
    event: str
    title: str
    lines: tuple[str, ...]  # plain text, one fact per line
    data: dict[str, Any] = field(default_factory=dict)  # the webhook's `data`

    def summary(self) -> str:
        return self.title + (f": {self.lines[0]}" if self.lines else "")


def render(event: str, payload: Mapping[str, Any], shares: Shares) -> Message | None:
    """The message for one outbox row, or None when sharing leaves nothing to say."""
    kind = EventKind(event)
    if kind is EventKind.NEW_ON_OPEN_OPPORTUNITY:
        return _overlap(kind, payload, shares, named_only=False)
    if kind is EventKind.PARTNER_CUSTOMER_ON_PROSPECT:
        return _overlap(kind, payload, shares, named_only=True)
    if kind is EventKind.CLOSED_WITH_PARTNER:
        return _closed(payload, shares)
    if kind is EventKind.DIGEST_WEEKLY:
        return _digest(payload, shares)
    if kind is EventKind.DEAD_LETTERS:
        return Message(event, "Dead letters past the threshold", (
            f"{payload['pending']:,} records wait in the dead-letter queue (threshold "
            f"{payload['threshold']:,}); `ecosync status` lists them",), dict(payload))
    if kind is EventKind.API_BUDGET:
        return Message(event, f"{payload['source']} API budget past the threshold", (
            f"{payload['used']:,} of {payload['limit']:,} calls used today "
            f"({payload['ratio']:.0%}; threshold {payload['threshold']:.0%})",), dict(payload))
    return Message(event, "ecosync test alert", (
        "This is a sample from `ecosync alerts test`; the receiver is reachable.",
        "Sample account: Example Corp (example.com); sample partner: Example Partner "
        "(customer)"), dict(payload))


def _account(payload: Mapping[str, Any]) -> dict[str, Any]:
    acc = payload.get("account") or {}
    return {k: acc.get(k) for k in ("source", "external_id", "name", "domain", "owner_id")}


def _account_label(acc: Mapping[str, Any]) -> str:
    name = acc.get("name") or acc.get("external_id") or "?"
    return f"{name} ({acc['domain']})" if acc.get("domain") else str(name)


def _overlap(kind: EventKind, payload: Mapping[str, Any], shares: Shares,
             named_only: bool) -> Message | None:
    p = payload["partner"]
    if p["id"] not in shares:
        return None
    name, share = shares[p["id"]]
    vis = visibility([SharedOverlap(p["id"], name, share, p["population"], p.get("owner_name"),
                                    p.get("owner_email"))])
    if vis.overlap_count == 0 or (named_only and not vis.named):
        return None
    acc = _account(payload)
    partner: dict[str, Any] | None = None
    if vis.named:
        partner = {"id": p["id"], "name": vis.named[0].partner_name,
                   "population": vis.named[0].population,
                   "contact": vis.contacts[0].label() if vis.contacts else None}
    who = vis.named[0].label() if vis.named else f"1 of the {COUNTS_ONLY}"
    lines = [f"{who} overlaps {_account_label(acc)}"]
    data: dict[str, Any] = {"account": acc, "partner": partner,
                            "partners_sharing_counts_only": 0 if vis.named else 1}
    if partner and partner["contact"]:
        lines.append(f"Partner contact to call: {partner['contact']}")
    if kind is EventKind.NEW_ON_OPEN_OPPORTUNITY:
        pipe = payload.get("open_pipeline") or {}
        opps = list(payload.get("opportunities") or [])
        data["open_pipeline"], data["opportunities"] = pipe, opps
        lines.append(f"Open pipeline: {_amount(pipe.get('amount'))} {pipe.get('currency', '')}"
                     f" in {pipe.get('count', 0)} opportunit"
                     f"{'y' if pipe.get('count') == 1 else 'ies'}")
        lines += [f"• {o.get('name') or o['external_id']}: {o.get('stage') or '?'}, "
                  f"{_amount(o.get('amount'))} {o.get('currency') or ''}".rstrip()
                  for o in opps]
        title = "Partner overlap on an open opportunity"
    else:
        lines.append("Our prospect; the partner's customer")
        title = "A partner's customer is our prospect"
    return Message(kind.value, title, tuple(lines), data)


def _closed(payload: Mapping[str, Any], shares: Shares) -> Message | None:
    stamp, credits = payload["stamp"], payload.get("credits") or []
    shown: list[dict[str, Any]] = []
    pooled, pooled_amount = 0, Decimal(0)
    for c in credits:
        if c["partner_id"] not in shares:
            continue
        name, share = shares[c["partner_id"]]
        population = c.get("population")
        # None: no population may show this partner (fail closed, sync.attribution.credited).
        level = Level.HIDDEN if population is None else share_level(share, population)
        if level in NAMED:
            shown.append({"name": name, "population": population, "kind": c["kind"],
                          "corporate_amount": c.get("corporate_amount")})
        elif level is Level.COUNTS:
            pooled += 1
            pooled_amount += Decimal(c.get("corporate_amount") or 0)
    if not shown and not pooled:
        return None
    cur = stamp.get("corporate_currency") or ""
    opp = payload.get("opportunity") or {}
    sourced = next((s["name"] for s in shown if s["kind"] == "sourced"), None)
    lines = [f"{opp.get('name') or opp.get('external_id')} closed {stamp['outcome']} on "
             f"{stamp.get('close_date')}: {_amount(stamp.get('corporate_amount'))} {cur}"]
    if payload.get("account"):
        lines.append(f"Account: {_account_label(_account(payload))}")
    lines.append(f"Sourced by: {sourced}" if sourced else "Sourced by: no named partner")
    lines += [f"• {s['name']}" + (f" ({s['population']})" if s["population"] else "")
              + f": {s['kind']}, {_amount(s['corporate_amount'])} {cur}" for s in shown]
    if pooled:
        lines.append(f"• {pooled} of the {COUNTS_ONLY}: {_amount(str(pooled_amount))} {cur}")
    data = {"account": _account(payload) if payload.get("account") else None,
            "opportunity": dict(opp), "outcome": stamp["outcome"],
            "close_date": stamp.get("close_date"), "amount": stamp.get("amount"),
            "currency": stamp.get("currency"), "corporate_amount": stamp.get("corporate_amount"),
            "corporate_currency": cur, "influenced": True, "sourced_by": sourced,
            "partners": shown, "partners_sharing_counts_only": {
                "count": pooled, "corporate_amount": str(pooled_amount)} if pooled else None,
            "stamped_late": stamp.get("late", False)}
    return Message(EventKind.CLOSED_WITH_PARTNER.value,
                   "Opportunity closed with partner influence", tuple(lines), data)


def _digest(payload: Mapping[str, Any], shares: Shares) -> Message | None:
    pid = payload["partner_id"]
    if pid not in shares:
        return None
    name, share = shares[pid]
    rows = []
    for r in payload.get("accounts") or []:
        vis = visibility([SharedOverlap(pid, name, share, r["their_population"],
                                        r.get("owner_name"), r.get("owner_email"))])
        if not vis.named:
            continue  # the policy changed since the list was made: this row may not show
        contact = vis.contacts[0].label().removesuffix(f" ({name})") if vis.contacts else None
        rows.append({k: r.get(k) for k in ("account", "source", "external_id",
                                           "their_population", "open_pipeline", "currency",
                                           "stage", "score", "why")} | {"contact": contact})
    if not rows:
        return None
    lines = [f"{len(rows)} named account{'s' if len(rows) != 1 else ''} to work with {name} "
             f"this week" + ("" if len(rows) >= 8 else " (fewer than 8: a rolodex, not yet a "
                                                         "working set)")]
    lines += [f"{i}. {r['account']} ({r['their_population']}), score {r['score']}: "
              f"{_amount(r['open_pipeline'])} {r['currency']} open"
              + (f", call {r['contact']}" if r["contact"] else "")
              for i, r in enumerate(rows, 1)]
    return Message(EventKind.DIGEST_WEEKLY.value, f"Weekly joint accounts: {name}",
                   tuple(lines), {"partner": {"id": pid, "name": name},
                                  "week": payload["week"], "accounts": rows})


def _amount(value: Any) -> str:
    if value is None:
        return "?"
    return f"{Decimal(str(value)):,.0f}"


def webhook_body(msg: Message, *, alert: str, key: str, occurred_at: str) -> bytes:
    return json.dumps({"id": key, "event": msg.event, "alert": alert,
                       "occurred_at": occurred_at, "title": msg.title, "text": list(msg.lines),
                       "data": msg.data}, ensure_ascii=False, separators=(",", ":"),
                      default=str).encode()


def _mrkdwn(text: str) -> str:
    # Slack's three control characters: partner-supplied names must not become mentions
    # or links (`<!channel>`).
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(msg: Message, *, key: str) -> bytes:
    """An incoming-webhook message in Block Kit: header, one section per ~20 lines, context."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": msg.title[:150]}}]
    chunks: Sequence[tuple[str, ...]] = [msg.lines[i:i + 20]
                                         for i in range(0, len(msg.lines), 20)]
    for chunk in chunks:
        blocks.append({"type": "section", "text": {
            "type": "mrkdwn", "text": _mrkdwn("\n".join(chunk))[:3000]}})
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": _mrkdwn(f"ecosync · {msg.event} · {key}")}]})
    return json.dumps({"text": _mrkdwn(msg.summary())[:3000], "blocks": blocks},
                      ensure_ascii=False, separators=(",", ":")).encode()
