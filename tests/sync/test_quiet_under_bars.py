"""While progress bars show a command's stages on a terminal, the terminal gets warnings and
errors only: the info lines (each stage's pull and write, the tick summary) repeat what the
bars and the command's closing line in words already say. `level = "debug"` keeps them."""

from __future__ import annotations

import io

from sync.logs import configure_logging, get_logger, quiet_under_bars


def _lines(level: str) -> tuple[str, str]:
    out = io.StringIO()
    configure_logging("json", level, stream=out)
    log = get_logger("ecosync.tick")
    with quiet_under_bars():
        log.info("pulled", records=115)
        log.warning("partner file has a bad row", line=4)
    under_bars = out.getvalue()
    out.truncate(0)
    out.seek(0)
    log.info("pulled", records=728)
    return under_bars, out.getvalue()


def test_info_lines_leave_the_terminal_to_the_bars_warnings_stay() -> None:
    try:
        under_bars, after = _lines("info")
        assert '"pulled"' not in under_bars and "bad row" in under_bars
        assert '"records": 728' in after  # without bars (a pipe, the daemon): every line
        under_bars, _ = _lines("debug")
        assert '"records": 115' in under_bars and "bad row" in under_bars
    finally:
        configure_logging("json", "warning", stream=io.StringIO())
