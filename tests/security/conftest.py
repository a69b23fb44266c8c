"""The security suite reuses the reliability suite's scenario helpers, the matching suite's
warehouse builders and the alert suite's receivers."""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_TESTS / "reliability"))
sys.path.insert(0, str(_TESTS / "sync" / "matching"))
sys.path.insert(0, str(_TESTS / "sync" / "alerts"))
