"""Output of the experiment commands: an aligned text table, a JSON record and the environment."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any, Sequence

from embedlab.experiment.report import write_text_atomically


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns padded to their widest cell; floats with 3 decimals, None as '-'."""

    def cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.3f}"
        return str(value)

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(headers, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def environment() -> dict[str, Any]:
    """Versions and machine facts recorded with every result."""
    import torch

    return {"python": sys.version.split()[0], "torch": torch.__version__, "platform": platform.platform(),
            "cpus": os.cpu_count(), "command": " ".join(sys.argv)}


def write_json(path: Path, data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically, with the user's umask."""
    return write_text_atomically(path, json.dumps(data, indent=2), option="results file")
