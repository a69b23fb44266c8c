"""Account matching (DESIGN.md section 4): keys, the matching engine, overrides, explain."""
