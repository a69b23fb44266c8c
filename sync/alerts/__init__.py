"""Co-sell signals (DESIGN.md section 12): `[[alerts]]` to Slack or signed HTTPS webhooks.

- `config`: the `[[alerts]]` table and the event names.
- `detect`: facts the tick produced (new overlaps on open opportunities, partners' customers
  on our prospects, stamped closes), recorded once each and queued in the outbox in the same
  transaction as the stamp stage.
- `periodic`: the weekly digest and the operations thresholds, queued once per period.
- `render`: every message body, built through `sync.sharing` only.
- `deliver`: sending after commit (signatures, retries, bounded timeouts);
- `stage`: the tick's `deliver alerts` stage (sync/tick.py), skipped in a dry run.
"""
