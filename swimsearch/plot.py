"""Report charts drawn with Pillow: the precision-recall curve and precision by rank.

Pillow is already a dependency; a plotting library would add tens of MB for
two line charts.
"""

from __future__ import annotations

import os
from typing import IO, Sequence

from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

from . import __version__
from .metrics import QualityReport

INK = (40, 44, 52)
GRID = (226, 229, 234)
AXIS = (150, 155, 165)
LINE = (20, 110, 190)
BACKGROUND = (255, 255, 255)


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: bitmap font
        return ImageFont.load_default()


def _panel(draw, box, xs: Sequence[float], ys: Sequence[float], *, xlabel: str, ylabel: str, title: str, xmax: float, xticks):
    left, top, right, bottom = box
    small, medium = _font(15), _font(18)
    draw.text((left, top - 34), title, fill=INK, font=medium)
    for i in range(0, 11):
        y = bottom - (bottom - top) * i / 10
        draw.line([(left, y), (right, y)], fill=GRID, width=1)
        if i % 2 == 0:
            draw.text((left - 8, y), f"{i / 10:.1f}", fill=INK, font=small, anchor="rm")
    for tick in xticks:
        x = left + (right - left) * tick / xmax
        draw.line([(x, top), (x, bottom)], fill=GRID, width=1)
        draw.text((x, bottom + 8), f"{tick:g}", fill=INK, font=small, anchor="mt")
    draw.line([(left, bottom), (right, bottom)], fill=AXIS, width=2)
    draw.line([(left, top), (left, bottom)], fill=AXIS, width=2)
    points = [
        (left + (right - left) * min(x, xmax) / xmax, bottom - (bottom - top) * max(0.0, min(1.0, y)))
        for x, y in zip(xs, ys)
    ]
    if len(points) > 1:
        draw.line(points, fill=LINE, width=3, joint="curve")
    draw.text(((left + right) / 2, bottom + 32), xlabel, fill=INK, font=small, anchor="mt")
    draw.text((left - 52, (top + bottom) / 2), ylabel, fill=INK, font=small, anchor="mm")


def draw_quality_plot(
    report: QualityReport, out: str | os.PathLike | IO[bytes], *, title: str = "", protocol: str = ""
) -> None:
    """Two panels side by side (PR curve, precision by rank 1..100) as a PNG (a path or an open binary file).

    Args:
        protocol: which matches the figures count (e.g. "excluding same sender_id: ..."),
            drawn under the headline and kept in the PNG's text as "Protocol":
            a chart passed around without it reads as an easier test than it was.
    """
    width, height = 1400, 620
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    headline = (
        f"{title}    mAP@10 {report.map10:.3f}    P@1 {report.p1:.3f}    P@10 {report.p10:.3f}    R@100 {report.r100:.3f}"
    )
    draw.text((40, 24), headline.strip(), fill=INK, font=_font(22))
    if protocol:
        draw.text((40, 58), f"Figures {protocol}", fill=INK, font=_font(17))
    recall = [0.0, *report.recall_at]
    precision = [report.precision_at[0], *report.precision_at]
    xmax = max(0.05, min(1.0, round(max(recall) + 0.05, 1)))
    _panel(
        draw,
        (110, 130, 660, 530),
        recall,
        precision,
        xlabel="recall (ranks 1-100)",
        ylabel="precision",
        title="Precision-recall",
        xmax=xmax,
        xticks=[round(xmax * i / 5, 3) for i in range(6)],
    )
    ranks = list(range(1, len(report.precision_at) + 1))
    _panel(
        draw,
        (810, 130, 1360, 530),
        ranks,
        report.precision_at,
        xlabel="rank",
        ylabel="precision",
        title="Precision at rank k",
        xmax=max(ranks) if ranks else 100,
        xticks=[1, 20, 40, 60, 80, 100],
    )
    info = PngInfo()
    info.add_text("Title", title)
    info.add_text("Protocol", protocol)
    info.add_text("Software", f"SwimSearch {__version__}")  # so a later --plot knows it may draw over this file
    image.save(out, format="PNG", pnginfo=info)
