"""The evaluation package stays pure: importing it loads no web, HTTP or database module."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("fastapi", "starlette", "httpx", "sqlalchemy", "retrigger.db", "retrigger.api")


class TestImports:
    def test_no_io_module_is_imported(self) -> None:
        code = (
            "import sys, retrigger.evaluation; "
            f"print([m for m in sys.modules if m.startswith({FORBIDDEN!r})])"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == "[]"
