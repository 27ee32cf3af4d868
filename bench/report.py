"""Rows of the results table: each figure the median of its runs, with min and max."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Row:
    key: str  # stable id the test checks, e.g. "stage.project"
    section: str
    measure: str
    unit: str
    runs: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key, "section": self.section, "measure": self.measure, "unit": self.unit,
            "median": self.median, "min": min(self.runs), "max": max(self.runs), "runs": self.runs,
        }


def ratio_row(key: str, section: str, measure: str, top: Row, bottom: Row) -> Row:
    """Run-by-run ratio of two rows measured in the same rounds (x = top / bottom)."""
    return Row(key, section, measure, "x", [a / b for a, b in zip(top.runs, bottom.runs, strict=True)])


def _fmt(value: float, unit: str) -> str:
    if unit == "x":
        return f"{value:.2f}" if value >= 0.1 else f"{value:.2g}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def markdown_table(rows: list[Row]) -> str:
    lines = ["| section | measure | median | min | max | unit | runs |", "|---|---|--:|--:|--:|---|--:|"]
    for r in rows:
        lines.append(
            f"| {r.section} | {r.measure} | {_fmt(r.median, r.unit)} | {_fmt(min(r.runs), r.unit)} "
            f"| {_fmt(max(r.runs), r.unit)} | {r.unit} | {len(r.runs)} |"
        )
    return "\n".join(lines)
