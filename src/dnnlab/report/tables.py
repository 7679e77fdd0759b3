"""Tables as CSV text: the reports write their figures as CSV beside the Markdown and HTML."""

from __future__ import annotations

import csv
import io
from typing import Any


def csv_text(rows: list[dict[str, Any]]) -> str:
    """`rows` as CSV, the columns in order of first appearance."""
    buffer = io.StringIO()
    fields = list(dict.fromkeys(key for row in rows for key in row))
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
