"""The report's pictures, drawn with matplotlib (the `report` extra) as PNG bytes.

Figures are built with matplotlib's object API on the Agg canvas, never pyplot: no GUI backend is chosen,
no global figure state is left behind, and nothing needs a display.
"""

from __future__ import annotations

import io

from nnlint.report.evidence_pictures import log_scale, plural, segments

DPI = 100
CURVE_SIZE = (7.0, 3.2)  # inches
MAP_SIZE = (5.6, 4.4)
# Fixed margins (fractions of the figure): matplotlib's constrained layout took most of each figure's time.
CURVE_MARGINS = {"left": 0.11, "right": 0.98, "bottom": 0.15, "top": 0.91}
MAP_MARGINS = {"left": 0.12, "right": 0.98, "bottom": 0.11, "top": 0.93}
# A gradient map's colours span this many decades below its largest cell; a cell of exactly 0 is grey.
MAP_DECADES = 6
ZERO_GREY = "#d9d9d9"
# One colour per stepping on every figure of a page, whichever curve a finding lists first.
STEPPING_COLOURS = {"stepped once per epoch": "C0", "stepped every batch": "C1"}


def lr_curve_png(curves: list[dict], title: str) -> bytes:
    """The simulated LR of each curve over the run, as steps (an LR holds until the scheduler changes it)."""
    figure = _figure(CURVE_SIZE, CURVE_MARGINS)
    axes = figure.subplots()
    for curve in curves:
        pieces = segments(curve)
        xs = [x for x, _, _ in pieces] + [pieces[-1][1]]
        lrs = [lr for _, _, lr in pieces] + [pieces[-1][2]]
        colour = STEPPING_COLOURS.get(curve["label"])
        axes.step(xs, lrs, where="post", label=curve["label"], color=colour, linewidth=1.6)
    if any(log_scale([curve]) for curve in curves):
        axes.set_yscale("log", nonpositive="clip")
    else:
        axes.set_ylim(bottom=0)  # a flat LR at 1x reads as flat, not as noise around 1
    axes.set_xlabel(plural(curves[0]["unit"], 2))
    axes.set_ylabel("LR (x the initial LR)")
    axes.set_title(title, fontsize=10)
    axes.grid(True, alpha=0.3)
    if len(curves) > 1:
        axes.legend(fontsize=8)
    return _png(figure)


def gradient_map_png(gradient_map: dict, title: str, marked: tuple[int, int] | None) -> bytes:
    """Max |gradient| of each row's outputs on each column's input, on a log colour scale. The white line
    bounds the cells that must be 0 (off the diagonal for samples; right of it for a causal model's steps);
    a red box marks `marked`, the finding's (row, column)."""
    import numpy
    from matplotlib import colormaps
    from matplotlib.colors import LogNorm
    from matplotlib.patches import Rectangle

    values = numpy.array(gradient_map["values"], dtype=float)
    block = gradient_map.get("block", 1)
    rows, columns = values.shape[0] * block, values.shape[1] * block
    top = float(values.max()) if values.size and values.max() > 0 else 1.0
    figure = _figure(MAP_SIZE, MAP_MARGINS)
    axes = figure.subplots()
    image = axes.imshow(
        numpy.ma.masked_less_equal(values, 0),
        cmap=colormaps["viridis"].with_extremes(bad=ZERO_GREY),
        norm=LogNorm(top * 10.0**-MAP_DECADES, top, clip=True),
        extent=(-0.5, columns - 0.5, rows - 0.5, -0.5),
        interpolation="nearest",
    )
    figure.colorbar(image, ax=axes, label="max |gradient| (grey: exactly 0)")
    boundaries = (0, 1) if gradient_map["kind"] == "samples" else (gradient_map["first_hidden"],)
    for first_hidden in boundaries:
        axes.plot(*_staircase(rows, columns, first_hidden), color="white", linewidth=1.5)
    if marked is not None:
        row, column = marked
        axes.add_patch(Rectangle((column - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
    axes.set_xlim(-0.5, columns - 0.5)
    axes.set_ylim(rows - 0.5, -0.5)
    axes.set_xlabel(gradient_map["columns"])
    axes.set_ylabel(gradient_map["rows"])
    axes.set_title(title, fontsize=10)
    return _png(figure)


def _staircase(rows: int, columns: int, first_hidden: int) -> tuple[list[float], list[float]]:
    """The line between the cells of row r left of column r + first_hidden and those from it on."""
    xs, ys = [], []
    for row in range(rows):
        x = min(max(row + first_hidden - 0.5, -0.5), columns - 0.5)
        xs += [x, x]
        ys += [row - 0.5, row + 0.5]
    return xs, ys


def _figure(size: tuple[float, float], margins: dict[str, float]):
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=DPI)
    figure.subplots_adjust(**margins)
    return figure


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})  # the same bytes from the same evidence
    return buffer.getvalue()
