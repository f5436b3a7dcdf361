"""Charts where a picture says more: PNGs small enough for a phone, drawn without a display.

Prices are drawn as % change from the chart's first day so IWM and SPY share
one axis; yields (units: percent) go on a second axis in their own units.
"""

from __future__ import annotations

import gc
import io
from datetime import date

import numpy as np
import pandas as pd

PHONE_SIZE = (7.0, 4.2)  # inches; at 110 dpi about 770 x 460 px
DPI = 110


def _figure(figsize, dpi):
    """A matplotlib Figure drawn by Agg, outside pyplot.

    Without pyplot no figure is registered in a global list: a figure is
    freed as soon as it is dropped, so a daemon that draws charts for months
    never accumulates them (and pyplot, with its GUI-backend machinery, is
    never imported).
    """
    # deliberately lazy: matplotlib costs ~1 s and ~40 MB, paid only when a chart is drawn
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # deliberately lazy: as above
    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def _colors():
    import matplotlib  # deliberately lazy: as above (already imported by _figure)
    return matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]


# Fixed margins of an alert chart (fractions of PHONE_SIZE): room for 8 pt tick labels, the title, the
# dates and, on the right, the yield axis. Fixed rather than tight_layout, which lays the chart out
# twice (~30% of a chart's cost) to arrive at about these.
MARGINS = {"left": 0.085, "bottom": 0.11, "top": 0.92}
RIGHT = {True: 0.905, False: 0.975}  # with / without a yield axis


def _concise_dates(ax):
    """Short date labels (Feb, Mar, ..., the year where it changes) that fit unrotated."""
    from matplotlib import dates  # deliberately lazy: as above
    locator = dates.AutoDateLocator(maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(dates.ConciseDateFormatter(locator))


def series_chart(frame, names: list[str], units: dict[str, str], marks: list, title: str,
                 start=None, end=None) -> bytes:
    """PNG bytes: `names` over [start, end] from `frame` (an engine Frame), with `marks` (sessions) marked."""
    sessions = frame.sessions
    lo = sessions.searchsorted(pd.Timestamp(start)) if start is not None else 0
    hi = sessions.searchsorted(pd.Timestamp(end), side="right") if end is not None else len(sessions)
    x = sessions[lo:hi]
    fig = _figure(PHONE_SIZE, DPI)
    ax = fig.add_subplot()
    ax2 = None
    colors = _colors()
    lines = []
    for k, name in enumerate(names):
        y = frame.series(name)[lo:hi]
        if not np.isfinite(y).any():
            continue
        color = colors[k % len(colors)]
        if units.get(name) == "percent":
            ax2 = ax2 or ax.twinx()
            lines += ax2.plot(x, y, color=color, linewidth=1.4, linestyle="--", label=f"{name} (%)")
        else:
            first = y[np.isfinite(y)][0]
            lines += ax.plot(x, (y / first - 1) * 100, color=color, linewidth=1.6, label=f"{name} (% chg)")
    for mark in marks:
        ax.axvline(pd.Timestamp(mark), color="#d62728", alpha=0.35, linewidth=2)
    ax.set_title(title, fontsize=11, loc="left", y=1.0, pad=6)  # a fixed place: no search for room above the axes
    ax.grid(alpha=0.25)
    ax.tick_params(labelsize=8)
    _concise_dates(ax)
    if ax2 is not None:
        ax2.tick_params(labelsize=8)
        ax2.set_ylabel("yield, %", fontsize=8)
    if lines:
        ax.legend(lines, [line.get_label() for line in lines], fontsize=8, loc="upper left", framealpha=0.85)
    fig.subplots_adjust(right=RIGHT[ax2 is not None], **MARGINS)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    # Freed now: a figure, its axes and its artists refer to each other, so only the cyclic collector frees
    # them; left to its own pace, the figures of a busy week waited in memory and a months-long daemon
    # grew by 22 MB over 2008-2026 (tests/test_soak.py).
    fig.clear()
    del fig, ax, ax2, lines
    gc.collect()
    return buffer.getvalue()


def alert_chart(frame, rule, session, units: dict[str, str], months: int = 6) -> bytes:
    """The series a rule reads over the last `months` months, the firing session marked."""
    end = pd.Timestamp(session)
    start = end - pd.DateOffset(months=months)
    names = [n for n in rule.chart if n in frame.daily] or list(rule.chart)
    return series_chart(frame, names, units, [end], f"{rule.id}: {end:%Y-%m-%d}", start, end)


def backtest_chart(prepared, rules, start: date | None, end: date | None, path: str,
                   units: dict[str, str] | None = None, evaluable_from: date | None = None) -> None:
    """One panel per rule over the window actually covered (from `evaluable_from`, the first session any
    rule can be evaluated, which the backtest report gives: the chart computes nothing of the engine's):
    its prices as % change on the left axis, its yields in their own units on a second axis, every firing
    marked."""
    ev = prepared.evaluation
    frame = ev.frame
    sessions = frame.sessions
    first = sessions.searchsorted(pd.Timestamp(evaluable_from)) if evaluable_from else 0
    lo = max(sessions.searchsorted(pd.Timestamp(start)) if start else 0, first)
    hi = sessions.searchsorted(pd.Timestamp(end), side="right") if end else len(sessions)
    x = sessions[lo:hi]
    fig = _figure((10, 2.4 * len(rules)), 90)
    axes = fig.subplots(len(rules), 1, sharex=True, squeeze=False)
    for ax, rule in zip(axes[:, 0], rules):
        prices = [n for n in rule.chart if n in frame.daily and frame.series(n)[lo:hi].size][:3]
        twin = None
        for name in prices:
            y = frame.series(name)[lo:hi]
            finite = np.flatnonzero(np.isfinite(y))
            if not len(finite):
                continue
            if (units or {}).get(name) == "percent":  # yields: levels in their own units
                twin = twin or ax.twinx()
                twin.plot(x, y, linewidth=1, linestyle="--", color="#555555", label=f"{name} (%, right)")
                twin.tick_params(labelsize=7)
            else:
                ax.plot(x, (y / y[finite[0]] - 1.0) * 100.0, linewidth=1, label=f"{name} (% from start)")
        fires = ev.fire_dates(rule.id, x[0] if len(x) else start, end)
        for session in fires:
            ax.axvline(session, color="#d62728", alpha=0.5, linewidth=1)
        ax.set_title(f"{rule.id} ({len(fires)} firings)", fontsize=9, loc="left")
        handles, labels = ax.get_legend_handles_labels()
        if twin is not None:
            more = twin.get_legend_handles_labels()
            handles, labels = handles + more[0], labels + more[1]
        ax.legend(handles, labels, fontsize=7, loc="upper left", frameon=True, framealpha=0.8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(path)


def sweep_chart(rows, names: list[str], path: str, title: str) -> None:
    """Firings per year against the first swept parameter (one line per value of a second one)."""
    fig = _figure(PHONE_SIZE, DPI)
    ax = fig.add_subplot()
    first = names[0] if names else "value"
    groups: dict = {}
    for row in rows:
        key = tuple((n, row.params[n]) for n in names[1:])
        groups.setdefault(key, []).append((row.params.get(first), row.per_year or 0.0))
    for key, points in groups.items():
        points.sort()
        label = ", ".join(f"{n}={v:g}" for n, v in key) or None
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", linewidth=1, label=label)
    ax.set_xlabel(first)
    ax.set_ylabel("firings per year")
    ax.set_title(title, fontsize=9, loc="left")
    if len(groups) > 1:
        ax.legend(fontsize=7, frameon=True, framealpha=0.8)
    fig.tight_layout()
    fig.savefig(path)
