"""A stacked bar chart as inline SVG: per day, the records of each action. No JavaScript
and no chart library (the API server may have no internet access).

This module does the arithmetic; the SVG itself is drawn by the ``chart`` macro of
``templates/_chart.html``, which escapes every label."""

from __future__ import annotations

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


def ordered_actions(actions: Any) -> list[str]:
    """``actions`` in display order: koppel's own first, in :data:`ACTION_ORDER`, then any
    other alphabetically."""
    seen = set(actions)
    return [a for a in ACTION_ORDER if a in seen] + sorted(seen - set(ACTION_ORDER))


def stacked_days(series: Sequence[dict[str, Any]], *, title: str, width: int = 420,
                 height: int = 150) -> dict[str, Any]:
    """The chart of ``series`` (``[{"day": "YYYY-MM-DD", "counts": {action: n}}, ...]``,
    oldest first): its frame, the y axis' top value and one bar segment per day and
    action, bottom up in :func:`ordered_actions` order, coordinates rounded to 0.1."""
    pad_left, pad_bottom, pad_top = 34, 18, 8
    plot_w, plot_h = width - pad_left - 4, height - pad_bottom - pad_top
    top = max((sum(d["counts"].values()) for d in series), default=0)
    scale = plot_h / top if top else 0
    step = plot_w / max(len(series), 1)
    bar_w = max(step * 0.75, 1)
    actions = ordered_actions(a for day in series for a in day["counts"])
    bars = []
    for i, day in enumerate(series):
        x = pad_left + i * step + (step - bar_w) / 2
        y = pad_top + plot_h
        for action in actions:
            n = day["counts"].get(action, 0)
            if not n:
                continue
            h = n * scale
            y -= h
            bars.append({"x": f"{x:.1f}", "y": f"{y:.1f}", "width": f"{bar_w:.1f}",
                         "height": f"{h:.1f}", "fill": colour(action), "day": day["day"],
                         "action": action, "n": n})
    return {
        "title": title, "width": width, "height": height, "top": top, "bars": bars,
        "left": pad_left, "right": width - 4, "tick_x": pad_left - 4,
        "top_tick_y": pad_top + 8, "axis_y": pad_top + plot_h, "label_y": height - 4,
        # the first and last day under the axis (month-day), when there are days
        "days": (series[0]["day"][5:], series[-1]["day"][5:]) if series else None,
    }


def legend(actions: Sequence[str]) -> list[dict[str, str]]:
    """The legend's entries: each action with its colour."""
    return [{"action": a, "colour": colour(a)} for a in actions]
