"""Partner attribution stamped at close (DESIGN.md 6): rules, currency, the stamp stage."""
