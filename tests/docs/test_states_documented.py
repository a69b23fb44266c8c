"""Every run outcome and dead-letter state the code writes is explained in the operations guide."""

from __future__ import annotations

from pathlib import Path

from schema.states import DeadLetterStatus, RunStatus

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def test_every_run_status_and_dead_letter_state_is_in_the_operations_guide() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    section = text[text.index("### Run outcomes and dead-letter states"):]
    section = section[:section.index("\n## ")]
    for status in RunStatus:
        assert f"| `{status.value}` |" in section, status
    for state in DeadLetterStatus:
        assert f"`{state.value}`" in section, state
