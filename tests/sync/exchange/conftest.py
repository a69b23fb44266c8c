"""Exchange tests: builders in exchange_world (imported by path, as in the other suites)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
