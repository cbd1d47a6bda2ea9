"""Charts drawn on the server as small SVG (columns over days, bars by category, with a limit behind a
bar when there is one), and the same rows as CSV.

Why SVG made here rather than a charting library in the browser: the pages allow no inline script
(Content-Security-Policy), every chart must also be a CSV, and these are a handful of bars; a few
rectangles in the page weigh less than any library, need no JavaScript at all, print, and read by
screen reader through their title and the data table beside them."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

WIDTH = 720
COLUMN_HEIGHT = 200
LABEL_WIDTH = 170  # room for a member's or a reason's name left of its bar
ROW_HEIGHT = 26
MAX_BARS = 20
# A spreadsheet runs a cell that starts with one of these as a formula (as the usage export guards).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Shape:
    """One rectangle or text of a chart, in SVG user units."""

    x: float
    y: float
    w: float = 0.0
    h: float = 0.0
    text: str = ""
    css: str = ""
    anchor: str = "start"
    tip: str = ""


@dataclass
class Chart:
    key: str  # its address: /dashboard/{server}/stats/{key}.csv
    title: str
    header: list[str]  # the CSV's columns
    rows: Sequence[Sequence[Any]]  # the CSV's rows, as shown in the data table too
    kind: str = "bars"  # "columns" (over days) or "bars" (by category)
    labels: list[str] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    limits: list[float | None] = field(default_factory=list)
    note: str = ""
    empty_text: str = ""

    @property
    def empty(self) -> bool:
        return not any(self.values)

    def height(self) -> int:
        if self.kind == "columns":
            return COLUMN_HEIGHT + 40
        return ROW_HEIGHT * max(len(self.values[:MAX_BARS]), 1) + 10

    def shapes(self) -> list[Shape]:
        return self._columns() if self.kind == "columns" else self._bars()

    def _columns(self) -> list[Shape]:
        count = max(len(self.values), 1)
        top = nice_ceiling(max(self.values, default=0))
        left, plot = 40.0, WIDTH - 50.0
        step = plot / count
        every = max(1, math.ceil(count / 10))  # at most about ten day labels under the axis
        shapes = [
            Shape(left - 6, 14, text=fmt(top), css="axis", anchor="end"),
            Shape(left - 6, COLUMN_HEIGHT + 4, text="0", css="axis", anchor="end"),
            Shape(left, COLUMN_HEIGHT, plot, 1, css="baseline"),
        ]
        for n, (label, value) in enumerate(zip(self.labels, self.values, strict=True)):
            h = (COLUMN_HEIGHT - 10) * value / top if top else 0
            x = left + n * step
            shapes.append(
                Shape(x + 1, COLUMN_HEIGHT - h, max(step - 2, 1), h, css="bar", tip=f"{label}: {fmt(value)}")
            )
            if n % every == 0:
                shapes.append(
                    Shape(x + step / 2, COLUMN_HEIGHT + 18, text=label[5:], css="axis", anchor="middle")
                )
        return shapes

    def _bars(self) -> list[Shape]:
        values = self.values[:MAX_BARS]
        limits = (self.limits or [None] * len(values))[:MAX_BARS]
        top = nice_ceiling(max([*values, *(v for v in limits if v is not None)], default=0))
        room = WIDTH - LABEL_WIDTH - 70
        shapes: list[Shape] = []
        for n, (label, value, limit) in enumerate(zip(self.labels, values, limits, strict=False)):
            y = 4 + n * ROW_HEIGHT
            shown = label if len(label) <= 24 else label[:23] + "…"
            shapes.append(Shape(LABEL_WIDTH - 8, y + 15, text=shown, css="label", anchor="end", tip=label))
            if limit is not None and top:
                shapes.append(Shape(LABEL_WIDTH, y + 2, room * limit / top, ROW_HEIGHT - 8, css="limit"))
            w = room * value / top if top else 0
            tip = f"{label}: {fmt(value)}" + (f" / {fmt(limit)}" if limit is not None else "")
            shapes.append(Shape(LABEL_WIDTH, y + 4, w, ROW_HEIGHT - 12, css="bar", tip=tip))
            figure = fmt(value) + (f" / {fmt(limit)}" if limit is not None else "")
            end = max(w, room * limit / top if limit is not None and top else 0)
            shapes.append(Shape(LABEL_WIDTH + end + 6, y + 15, text=figure, css="figure"))
        return shapes

    def csv_text(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(self.header)
        writer.writerows([[safe_cell(value) for value in row] for row in self.rows])
        return out.getvalue()


def safe_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def nice_ceiling(value: float) -> float:
    """The axis' top: 1, 2 or 5 times a power of ten, at or above the largest value."""
    if value <= 0:
        return 0.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def fmt(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"
