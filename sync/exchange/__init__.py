"""Partner exchange (DESIGN.md 10): our accounts out under each partner's outbound policy
(`export`), partners' exchange files in (`importer`), in the versioned format of `format`
(docs/exchange-format.md)."""
