"""A stacked bar chart as inline SVG: per day, the records of each action. No JavaScript
and no chart library (the API server may have no internet access)."""

from __future__ import annotations

from html import escape
from typing import Any, Sequence

from koppel.web.queries import ACTION_ORDER

ACTION_COLOURS = {
    "created": "#2e7d32", "updated": "#1565c0", "skipped": "#9e9e9e", "failed": "#c62828",
    "waiting": "#f9a825",
    "conflict": "#ef6c00", "voided": "#6a1b9a", "refunded": "#00838f", "deleted": "#4e342e",
    "erased": "#37474f",
}
_OTHER = "#bdbdbd"


def colour(action: str) -> str:
    return ACTION_COLOURS.get(action, _OTHER)


def _actions(series: Sequence[dict[str, Any]]) -> list[str]:
    seen = {a for day in series for a in day["counts"]}
    return [a for a in ACTION_ORDER if a in seen] + sorted(seen - set(ACTION_ORDER))


def stacked_days(series: Sequence[dict[str, Any]], *, title: str, width: int = 420,
                 height: int = 150) -> str:
    """``series``: ``[{"day": "YYYY-MM-DD", "counts": {action: n}}, ...]``, oldest first."""
    pad_left, pad_bottom, pad_top = 34, 18, 8
    plot_w, plot_h = width - pad_left - 4, height - pad_bottom - pad_top
    top = max((sum(d["counts"].values()) for d in series), default=0)
    scale = plot_h / top if top else 0
    step = plot_w / max(len(series), 1)
    bar_w = max(step * 0.75, 1)
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(title)}</title>",
             f'<line x1="{pad_left}" y1="{pad_top + plot_h}" x2="{width - 4}" '
             f'y2="{pad_top + plot_h}" class="axis"/>',
             f'<text x="{pad_left - 4}" y="{pad_top + 8}" class="tick" text-anchor="end">{top}</text>',
             f'<text x="{pad_left - 4}" y="{pad_top + plot_h}" class="tick" text-anchor="end">0</text>']
    actions = _actions(series)
    for i, day in enumerate(series):
        x = pad_left + i * step + (step - bar_w) / 2
        y = pad_top + plot_h
        for action in actions:
            n = day["counts"].get(action, 0)
            if not n:
                continue
            h = n * scale
            y -= h
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                         f'fill="{colour(action)}" data-day="{escape(day["day"])}" '
                         f'data-action="{escape(action)}" data-n="{n}">'
                         f'<title>{escape(day["day"])}: {n} {escape(action)}</title></rect>')
    if series:
        parts.append(f'<text x="{pad_left}" y="{height - 4}" class="tick">'
                     f'{escape(series[0]["day"][5:])}</text>')
        parts.append(f'<text x="{width - 4}" y="{height - 4}" class="tick" text-anchor="end">'
                     f'{escape(series[-1]["day"][5:])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def legend(actions: Sequence[str]) -> str:
    return '<ul class="legend">' + "".join(
        f'<li><span class="swatch" style="background:{colour(a)}"></span>{escape(a)}</li>'
        for a in actions) + "</ul>"
