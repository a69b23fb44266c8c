"""Partners: the registry (config and CLI) and partner CSV imports (issue 6)."""

from sync.partners.csv_import import (
    ImportResult,
    PartnerImportError,
    import_partner_csv,
    replace_snapshot,
)
from sync.partners.csv_read import ParsedRow, RowProblem, parse_population
from sync.partners.registry import (
    PartnerSummary,
    add_partner,
    list_partners,
    sync_partners_from_config,
)
from sync.partners.staging import read_partner_csv

__all__ = [
    "ImportResult",
    "ParsedRow",
    "PartnerImportError",
    "PartnerSummary",
    "RowProblem",
    "add_partner",
    "import_partner_csv",
    "list_partners",
    "parse_population",
    "read_partner_csv",
    "replace_snapshot",
    "sync_partners_from_config",
]
