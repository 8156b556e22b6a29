"""Small inline-SVG charts for the dashboard: no JavaScript, no fonts or scripts from the network.

Each function returns one ``<svg>`` element as text; numbers are rounded to 2 decimals so the same data
gives the same bytes. Colours: reference grey-blue, current orange, realised dark, bands light.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

REFERENCE = "#5b7c99"
CURRENT = "#e07b24"
REALISED = "#1f2d3d"
BAND = "#f3d3b6"
GRID = "#e3e7ec"
ALERT = "#c62828"


def _f(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".") if math.isfinite(x) else "0"


def _text(x: float, y: float, text: str, size: int = 11, anchor: str = "start", extra: str = "") -> str:
    return (
        f'<text x="{_f(x)}" y="{_f(y)}" font-size="{size}" text-anchor="{anchor}"{extra}>'
        f"{html.escape(text)}</text>"
    )


def _frame(width: int, height: int, body: list[str], label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{html.escape(label)}" font-family="sans-serif">'
        + "".join(body)
        + "</svg>"
    )


def paired_bars(
    labels: Sequence[str],
    reference: Sequence[float],
    current: Sequence[float],
    title: str,
    width: int = 380,
    height: int = 190,
) -> str:
    """Reference vs current share per bin (grouped bars), bins left to right."""
    left, right, top, bottom = 34, 8, 22, 46
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([*reference, *current, 1e-9])
    n = max(len(labels), 1)
    slot = plot_w / n
    body = [_text(left, 14, title, 12, extra=' font-weight="bold"')]
    for frac in (0.0, 0.5, 1.0):
        y = top + plot_h * (1 - frac)
        body.append(f'<line x1="{left}" x2="{width - right}" y1="{_f(y)}" y2="{_f(y)}" stroke="{GRID}"/>')
        body.append(_text(left - 4, y + 4, f"{peak * frac:.2f}", 9, "end"))
    for i, (lab, r, c) in enumerate(zip(labels, reference, current, strict=True)):
        x0 = left + i * slot
        bar = slot * 0.38
        for j, (value, colour) in enumerate(((r, REFERENCE), (c, CURRENT))):
            h = plot_h * value / peak
            body.append(
                f'<rect x="{_f(x0 + slot * 0.1 + j * bar)}" y="{_f(top + plot_h - h)}" width="{_f(bar)}" '
                f'height="{_f(h)}" fill="{colour}"><title>{html.escape(lab)}: '
                f"{'reference' if j == 0 else 'current'} {value:.3f}</title></rect>"
            )
        short = lab if len(lab) <= 12 else lab[:11] + "…"
        body.append(
            _text(
                x0 + slot / 2,
                top + plot_h + 10,
                short,
                8,
                "end",
                f' transform="rotate(-35 {_f(x0 + slot / 2)} {_f(top + plot_h + 10)})"',
            )
        )
    return _frame(width, height, body, title)


def horizontal_bars(
    labels: Sequence[str], values: Sequence[float], totals: Sequence[float], title: str, width: int = 420
) -> str:
    """One bar per label: ``values[i]`` of ``totals[i]`` (e.g. drifting of watched features per family)."""
    row = 22
    left, top = 110, 24
    height = top + row * len(labels) + 8
    plot_w = width - left - 60
    body = [_text(4, 14, title, 12, extra=' font-weight="bold"')]
    for i, (lab, v, t) in enumerate(zip(labels, values, totals, strict=True)):
        y = top + i * row
        share = v / t if t else 0.0
        body.append(_text(left - 6, y + 14, lab, 11, "end"))
        body.append(f'<rect x="{left}" y="{y + 3}" width="{plot_w}" height="{row - 8}" fill="{GRID}"/>')
        colour = ALERT if v else REFERENCE
        body.append(
            f'<rect x="{left}" y="{y + 3}" width="{_f(plot_w * share)}" height="{row - 8}" fill="{colour}"/>'
        )
        body.append(_text(left + plot_w + 6, y + 14, f"{int(v)}/{int(t)}", 11))
    return _frame(width, height, body, title)


def line_chart(
    x_labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None], str]],
    title: str,
    band: tuple[Sequence[float], Sequence[float]] | None = None,
    y_range: tuple[float, float] | None = None,
    width: int = 760,
    height: int = 240,
) -> str:
    """Lines over windows (None = no point), an optional shaded band, a legend under the title."""
    left, right, top, bottom = 44, 12, 40, 52
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for _, vs, _ in series for v in vs if v is not None and math.isfinite(v)]
    if band is not None:
        values += [v for v in (*band[0], *band[1]) if math.isfinite(v)]
    lo, hi = y_range or ((min(values), max(values)) if values else (0.0, 1.0))
    if hi - lo < 1e-9:
        lo, hi = lo - 0.05, hi + 0.05
    n = max(len(x_labels), 1)

    def px(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def py(v: float) -> float:
        return top + plot_h * (1 - (v - lo) / (hi - lo))

    body = [_text(left, 14, title, 12, extra=' font-weight="bold"')]
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        body.append(
            f'<line x1="{left}" x2="{width - right}" y1="{_f(py(v))}" y2="{_f(py(v))}" stroke="{GRID}"/>'
        )
        body.append(_text(left - 4, py(v) + 4, f"{v:.3g}", 9, "end"))
    if band is not None and n > 0:
        upper = [f"{_f(px(i))},{_f(py(v))}" for i, v in enumerate(band[1]) if math.isfinite(v)]
        lower = [f"{_f(px(i))},{_f(py(v))}" for i, v in enumerate(band[0]) if math.isfinite(v)][::-1]
        if upper and lower:
            body.append(f'<polygon points="{" ".join(upper + lower)}" fill="{BAND}" opacity="0.8"/>')
    for k, (name, vs, colour) in enumerate(series):
        points = [(px(i), py(v)) for i, v in enumerate(vs) if v is not None and math.isfinite(v)]
        if len(points) > 1:
            path = " ".join(f"{_f(x)},{_f(y)}" for x, y in points)
            body.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for (x, y), v in zip(points, [v for v in vs if v is not None and math.isfinite(v)], strict=True):
            body.append(
                f'<circle cx="{_f(x)}" cy="{_f(y)}" r="3" fill="{colour}">'
                f"<title>{html.escape(name)}: {v:.3f}</title></circle>"
            )
        lx = left + 160 * k
        body.append(f'<rect x="{lx}" y="22" width="12" height="4" fill="{colour}"/>')
        body.append(_text(lx + 16, 28, name, 10))
    step = max(1, math.ceil(n / 12))
    for i, lab in enumerate(x_labels):
        if i % step == 0 or i == n - 1:
            body.append(
                _text(
                    px(i),
                    top + plot_h + 12,
                    lab,
                    9,
                    "end",
                    f' transform="rotate(-35 {_f(px(i))} {_f(top + plot_h + 12)})"',
                )
            )
    return _frame(width, height, body, title)
