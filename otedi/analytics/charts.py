"""The report's charts, drawn with matplotlib and returned as inline SVG text.

Each function takes plain lists (labels, dollar amounts as Decimal, rates
0..1) and returns one `<svg>` element to put in the HTML as it is:

- text stays text (svg.fonttype "none"), in the page's sans-serif fonts, so
  it is searchable and the file loads no font;
- no XML prolog, doctype, metadata or namespace URLs: the HTML parser knows
  inline SVG, and the report holds no http(s) reference at all;
- deterministic: no date in the metadata, a fixed hash salt, and every id
  prefixed with the chart's key, so the same data renders the same bytes
  and two charts on one page never share an id;
- money axes tick at round amounts ($0, $2,500, $5,000 ... $10k, $20k) and
  rate axes at round percentages.

Only matplotlib's object API is used (Figure, no pyplot): no global state,
no display, safe in a worker process.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from decimal import Decimal

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

PALETTE = ("#1f4e79", "#2a9d8f", "#e9a23b", "#c0392b", "#7f8c8d", "#6c4f9c", "#8cb369", "#d4a5a5")
INK, MUTED, GRID = "#222222", "#555555", "#e3e3e3"
FONTS = ["DejaVu Sans", "Liberation Sans", "Arial", "Helvetica"]
STEPS = [1, 2, 2.5, 5, 10]  # tick steps: 1, 2, 2.5 or 5 times a power of ten
RC = {
    "svg.fonttype": "none", "svg.hashsalt": "otedi-report", "font.family": "sans-serif", "font.sans-serif": FONTS,
    "font.size": 11, "axes.edgecolor": "#999999", "axes.labelcolor": MUTED, "xtick.color": MUTED,
    "ytick.color": MUTED, "axes.spines.top": False, "axes.spines.right": False, "axes.titlesize": 12,
    "legend.frameon": False, "legend.fontsize": 10, "axes.axisbelow": True,
}
METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}
PX = 72  # SVG user units are points: 72 per inch, drawn as CSS pixels


def money_label(value: float, top: float | None = None) -> str:
    """A tick label for a dollar amount on an axis reaching `top`: $0, $750, $2,500; $5k, $12.5k when the axis
    reaches $10,000; $1.2M when it reaches a million (one unit per axis)."""
    sign, v = ("-" if value < 0 else ""), abs(value)
    top = v if top is None else abs(top)
    if v == 0:
        return "$0"
    if top >= 1_000_000:
        text = f"{v / 1_000_000:.2f}".rstrip("0").rstrip(".") + "M"
    elif top >= 10_000:
        text = f"{v / 1000:.1f}".rstrip("0").rstrip(".") + "k"
    else:
        text = f"{v:,.0f}" if v == round(v) else f"{v:,.2f}"
    return f"{sign}${text}"


def _money_axis(axis) -> None:
    axis.set_major_locator(MaxNLocator(nbins=5, steps=STEPS, min_n_ticks=3))
    axis.set_major_formatter(FuncFormatter(
        lambda v, _: money_label(v, max(abs(x) for x in axis.get_view_interval()))))


def _rate_axis(axis, top: float) -> None:
    axis.set_major_locator(MaxNLocator(nbins=5, steps=STEPS, min_n_ticks=3))
    axis.set_major_formatter(PercentFormatter(xmax=1, decimals=0 if top >= 0.05 else 1))


def _figure(width: int, height: int) -> Figure:
    return Figure(figsize=(width / PX, height / PX), dpi=PX, layout="constrained")


def _floats(values: Sequence) -> list[float]:
    return [float(v or 0) for v in values]


ID = re.compile(r'\bid="([^"]+)"')


def to_svg(fig: Figure, key: str, title: str) -> str:
    """The figure as one inline <svg> element (see the module docstring)."""
    buf = io.StringIO()
    with matplotlib.rc_context({**RC, "svg.hashsalt": f"otedi-{key}"}):
        fig.savefig(buf, format="svg", metadata=METADATA)
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", text, count=2)
    for ident in ID.findall(text):
        new = f"{key}-{ident}"
        text = text.replace(f'id="{ident}"', f'id="{new}"').replace(f"url(#{ident})", f"url(#{new})") \
            .replace(f'href="#{ident}"', f'href="#{new}"')
    width, height = (round(v) for v in fig.get_size_inches() * PX)
    head = (f'<svg class="chart" role="img" aria-label="{_attr(title)}" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" preserveAspectRatio="xMinYMin meet"')
    text = re.sub(r'^<svg[^>]*?(?=>)', head, text, count=1)
    return text.replace("\n", "").replace(" />", "/>").strip() + "\n"


def _attr(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def _draw(key: str, title: str, width: int, height: int, paint) -> str:
    with matplotlib.rc_context(RC):
        fig = _figure(width, height)
        paint(fig)
        return to_svg(fig, key, title)


def bars(key: str, title: str, labels: Sequence[str], series: Sequence[tuple[str, Sequence]], *,
         stacked: bool = False, horizontal: bool = False, width: int = 1120, height: int = 300) -> str:
    """Bars of dollar amounts per label, one colour per series (grouped or stacked)."""
    def paint(fig):
        ax = fig.add_subplot()
        n = len(series)
        positions = list(range(len(labels)))
        bottom = [0.0] * len(labels)
        size = 0.7 if stacked or n == 1 else 0.8 / n
        for i, (name, values) in enumerate(series):
            vals = _floats(values)
            offset = 0 if stacked or n == 1 else (i - (n - 1) / 2) * size
            at = [p + offset for p in positions]
            if horizontal:
                ax.barh(at, vals, height=size, left=bottom if stacked else None, label=name,
                        color=PALETTE[i % len(PALETTE)])
            else:
                ax.bar(at, vals, width=size, bottom=bottom if stacked else None, label=name,
                       color=PALETTE[i % len(PALETTE)])
            if stacked:
                bottom = [b + v for b, v in zip(bottom, vals)]
        if horizontal:
            ax.set_yticks(positions, labels)
            ax.invert_yaxis()
            _money_axis(ax.xaxis)
            ax.grid(axis="x", color=GRID)
        else:
            ax.set_xticks(positions, labels)
            _money_axis(ax.yaxis)
            ax.grid(axis="y", color=GRID)
        ax.margins(x=0.02) if not horizontal else ax.margins(y=0.02)
        if n > 1:
            fig.legend(loc="outside upper right", ncols=min(n, 6))
    return _draw(key, title, width, height, paint)


def split_bar(key: str, title: str, parts: Sequence[tuple[str, Decimal]], *, colors: Sequence[str] = PALETTE,
              width: int = 1120, height: int = 150) -> str:
    """One horizontal bar split into parts (where the billed dollars went), each labelled with its share."""
    def paint(fig):
        ax = fig.add_subplot()
        total = sum(float(v) for _, v in parts) or 1.0
        left = 0.0
        for i, (name, value) in enumerate(parts):
            v = float(value)
            ax.barh([0], [v], left=left, height=0.6, color=colors[i % len(colors)],
                    label=f"{name} ${v:,.2f} ({v / total:.0%})")
            if v / total >= 0.08:
                ax.text(left + v / 2, 0, f"{v / total:.0%}", ha="center", va="center", color="white",
                        fontsize=11, fontweight="bold")
            left += v
        ax.set_yticks([])
        ax.spines["left"].set_visible(False)
        _money_axis(ax.xaxis)
        ax.set_xlim(0, total)
        fig.legend(loc="outside lower center", ncols=min(len(parts), 4))
    return _draw(key, title, width, height, paint)


def pareto(key: str, title: str, labels: Sequence[str], denied: Sequence, cumulative: Sequence, *,
           width: int = 1120, height: int = 320) -> str:
    """Denied dollars per root cause, largest first, with the cumulative share as a line on a 0-100% axis."""
    def paint(fig):
        ax = fig.add_subplot()
        positions = list(range(len(labels)))
        ax.bar(positions, _floats(denied), width=0.65, color=PALETTE[0], label="denied")
        ax.set_xticks(positions, [_wrap(label) for label in labels])
        _money_axis(ax.yaxis)
        ax.grid(axis="y", color=GRID)
        right = ax.twinx()
        right.plot(positions, _floats(cumulative), color=PALETTE[3], marker="o", linewidth=2,
                   label="cumulative share")
        right.set_ylim(0, 1.05)
        _rate_axis(right.yaxis, 1)
        right.spines["right"].set_visible(True)
        handles = ax.get_legend_handles_labels()
        more = right.get_legend_handles_labels()
        fig.legend(handles[0] + more[0], handles[1] + more[1], loc="outside upper right", ncols=2)
    return _draw(key, title, width, height, paint)


def trend(key: str, title: str, months: Sequence[str], denied: Sequence, claim_rate: Sequence,
          dollar_rate: Sequence, *, width: int = 1120, height: int = 300) -> str:
    """Denials by month: denied dollars as bars, the claim and dollar denial rates as lines."""
    def paint(fig):
        ax = fig.add_subplot()
        positions = list(range(len(months)))
        ax.bar(positions, _floats(denied), width=0.55, color=PALETTE[4], alpha=0.6, label="denied dollars")
        ax.set_xticks(positions, list(months))
        _money_axis(ax.yaxis)
        ax.grid(axis="y", color=GRID)
        right = ax.twinx()
        rates = [_floats(claim_rate), _floats(dollar_rate)]
        right.plot(positions, rates[0], color=PALETTE[3], marker="o", linewidth=2, label="denial rate (claims)")
        right.plot(positions, rates[1], color=PALETTE[0], marker="s", linewidth=2, label="denial rate (dollars)")
        top = max([v for r in rates for v in r] + [0.01])
        right.set_ylim(0, top * 1.25)
        _rate_axis(right.yaxis, top)
        right.spines["right"].set_visible(True)
        handles = ax.get_legend_handles_labels()
        more = right.get_legend_handles_labels()
        fig.legend(handles[0] + more[0], handles[1] + more[1], loc="outside upper right", ncols=3)
        ax.margins(x=0.08)
    return _draw(key, title, width, height, paint)


def _wrap(label: str, width: int = 22) -> str:
    """A long category label on two lines (at most), so x labels do not overlap."""
    words, lines, line = str(label).split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    return "\n".join(lines[:2]) + ("…" if len(lines) > 2 else "")
