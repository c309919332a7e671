"""One self-contained HTML finance report: KPIs, reconciliation and patient accounts, AR aging, denial Pareto,
payments, work queue.

Inline CSS and inline SVG charts drawn here; no script, font or image is
loaded from anywhere, so the file opens in a browser without a network.
Ids only (claim, payer, practice, NPI); no patient names, birth dates or
member ids.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from html import escape
from pathlib import Path

import pandas as pd

from otedi.analytics import aging, denials, kpis, reconcile, workqueue
from otedi.analytics.snapshot import dollars, load_snapshot, money_text
from otedi.files import private_dir, write_private_text

COLORS = ("#2f6690", "#d9822b", "#3a7d44", "#9c2c2c", "#6c4f9c")
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1040px;color:#222}
h1{font-size:1.5em;margin-bottom:0}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ccc}
.muted{color:#666;font-size:.9em}.tiles{display:flex;flex-wrap:wrap;gap:12px}
.tile{border:1px solid #ddd;border-radius:6px;padding:10px 14px;min-width:170px}
.tile b{display:block;font-size:1.6em}.tile span{font-size:.8em;color:#555}
table{border-collapse:collapse;margin:8px 0;font-size:.85em}th,td{border:1px solid #ddd;padding:3px 8px}
th{background:#f4f4f4;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
svg text{font-size:11px;fill:#333}
"""


def _table(frame: pd.DataFrame, money: tuple[str, ...] = (), limit: int = 50) -> str:
    if frame.empty:
        return '<p class="muted">none</p>'
    head = "".join(f"<th>{escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for rec in frame.head(limit).itertuples(index=False):
        cells = []
        for col, value in zip(frame.columns, rec):
            if col in money:
                cells.append(f'<td class="n">{money_text(value)}</td>')
            elif isinstance(value, (int, Decimal)) and not isinstance(value, bool):
                cells.append(f'<td class="n">{value}</td>')
            else:
                cells.append(f"<td>{'' if value is None or value is pd.NA else escape(str(value))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = f'<p class="muted">{len(frame) - limit} more rows in the exports</p>' if len(frame) > limit else ""
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>{more}"


def bar_chart(labels: list[str], series: list[tuple[str, list[int]]], title: str,
              cumulative: list[Decimal | None] | None = None, width: int = 720, height: int = 260) -> str:
    """Grouped bars (values in cents) with an optional cumulative-share line (0..1), as inline SVG."""
    left, right, top, bottom = 80, 40 if cumulative else 16, 28, 60
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([v for _, values in series for v in values] + [1])
    parts = [f'<svg role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}"><title>{escape(title)}</title>',
             f'<text x="{left}" y="16" font-weight="bold">{escape(title)}</text>',
             f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#999"/>']
    for i in range(5):
        y = top + plot_h - plot_h * i / 4
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{money_text(round(peak * i / 4))}</text>')
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#eee"/>')
    slot = plot_w / max(len(labels), 1)
    bar_w = slot * 0.8 / max(len(series), 1)
    for i, label in enumerate(labels):
        x0 = left + slot * i + slot * 0.1
        for s, (name, values) in enumerate(series):
            h = plot_h * max(values[i], 0) / peak
            parts.append(f'<rect x="{x0 + s * bar_w:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w:.1f}" '
                         f'height="{h:.1f}" fill="{COLORS[s % len(COLORS)]}"><title>{escape(name)} '
                         f'{escape(label)}: {money_text(values[i])}</title></rect>')
        parts.append(f'<text x="{left + slot * (i + 0.5):.1f}" y="{top + plot_h + 14}" text-anchor="middle">'
                     f'{escape(label[:14])}</text>')
    if cumulative:
        points = " ".join(f"{left + slot * (i + 0.5):.1f},{top + plot_h - plot_h * float(c or 0):.1f}"
                          for i, c in enumerate(cumulative))
        parts.append(f'<polyline points="{points}" fill="none" stroke="#9c2c2c" stroke-width="2"/>')
        parts.append(f'<text x="{left + plot_w + 4}" y="{top + 4}">100%</text>')
    for s, (name, _) in enumerate(series):
        x = left + s * 140
        parts.append(f'<rect x="{x}" y="{height - 18}" width="10" height="10" fill="{COLORS[s % len(COLORS)]}"/>'
                     f'<text x="{x + 14}" y="{height - 9}">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _kpi_tiles(rows: list[dict]) -> str:
    tiles = []
    for r in rows:
        value = r["value"]
        shown = "n/a" if value is None else (f"{value * 100:.1f}%" if r["unit"] == "ratio" else f"{value} days")
        tiles.append(f'<div class="tile"><span>{escape(r["kpi"].replace("_", " "))}</span><b>{shown}</b>'
                     f'<span>{escape(r["numerator"])} / {escape(r["denominator"])}</span></div>')
    return '<div class="tiles">' + "".join(tiles) + "</div>"


def render_report(today: date | None = None) -> str:
    """The report as one HTML string."""
    today = today or date.today()
    snap = load_snapshot()
    claims = reconcile.claim_frame(snap, today)
    kpi_rows = kpis.kpi_values(snap, claims, today)
    aged = aging.aging_frame(claims, today)
    detail = denials.denial_frame(snap, claims, today)
    pareto = denials.pareto_frame(detail, "category")
    pays = reconcile.payments(snap)
    queue = workqueue.work_queue(snap, today=today)

    by_type = aged.groupby("balance_type")[list(aging.BUCKETS)].sum() if len(aged) else pd.DataFrame()
    aging_series = [(f"{kind} balance", [int(by_type.loc[kind, b]) if kind in by_type.index else 0
                                         for b in aging.BUCKETS]) for kind in ("insurance", "patient")]
    aging_svg = bar_chart(list(aging.BUCKETS), aging_series, "AR aging (days since first submission)")

    pareto_svg = bar_chart([str(v) for v in pareto["label"]], [("denied", [int(v) for v in pareto["denied"]])],
                           "Denied dollars by root cause (line: cumulative share)",
                           cumulative=list(pareto["cumulative_share"])) if len(pareto) else ""

    posted = pays[pays["payment_date"].notna()].copy()
    posted["period"] = [d.strftime("%Y-%m") for d in posted["payment_date"]]
    if posted["period"].nunique() < 3:
        posted["period"] = [d.isoformat() for d in posted["payment_date"]]
    per_period = posted.groupby("period")["bpr_amount"].sum() if len(posted) else pd.Series(dtype=object)
    payments_svg = bar_chart(list(per_period.index), [("deposits (BPR02)", [int(v * 100) for v in per_period])],
                             "Payments by payment date") if len(per_period) else ""

    totals = {col: int(claims[col].sum()) for col in ["billed", *reconcile.POSTED, "written_off", "open_balance"]}
    totals_table = pd.DataFrame([{k: dollars(v) for k, v in totals.items()}])
    patient_cols = ["patient_responsibility", "patient_paid", "patient_written_off", "to_secondary", "patient_balance"]
    credit = int(snap.account.loc[snap.account["entry_type"] == "unapplied_credit", "amount_c"].sum())
    patient_table = pd.DataFrame([{**{c: dollars(int(claims[c].sum())) for c in patient_cols},
                                   "unapplied_credit": dollars(credit)}])
    offs = snap.account[snap.account["entry_type"] == "write_off"]
    write_offs = offs.groupby(["side", "reason"], as_index=False).agg(entries=("amount_c", "size"),
                                                                      amount=("amount_c", "sum"))
    write_offs["amount"] = [dollars(v) for v in write_offs["amount"]]
    deposit_ties = pd.DataFrame([{
        "payments": len(pays), "bpr02_total": sum(pays["bpr_amount"], Decimal("0.00")),
        "posted_payments": sum(pays["posted_payments"], Decimal("0.00")),
        "plb_total": sum(pays["plb_total"], Decimal("0.00")), "not_tied": int((~pays["ties"]).sum()),
    }])
    aged_out = aged.drop(columns=["payer_name"]).copy()
    for col in [*aging.BUCKETS, "total"]:
        aged_out[col] = [dollars(v) for v in aged_out[col]]
    pareto_out = pareto[["label", "denied", "lines", "claims", "share", "cumulative_share"]].copy()
    pareto_out["denied"] = [dollars(v) for v in pareto_out["denied"]]
    recoverable = denials.recoverable_by_category(detail)
    for col in ("denied", "recoverable"):
        recoverable[col] = [dollars(v) for v in recoverable[col]]
    summary = workqueue.work_queue_summary(queue)

    money_cols = ("billed", "paid", "contractual", "patient_responsibility", "other_adjustments", "denied",
                  "open_balance", "written_off", *patient_cols, "unapplied_credit", "bpr02_total", "posted_payments",
                  "plb_total", "recoverable", "amount", "total", *aging.BUCKETS)
    body = [
        f"<h1>otedi finance report</h1><p class=\"muted\">as of {today.isoformat()}; "
        f"{len(claims)} claims, {len(pays)} posted payments. Figures come from the posting ledger.</p>",
        "<h2>Key figures</h2>", _kpi_tiles(kpi_rows),
        "<h2>Reconciliation totals</h2>", _table(totals_table, money_cols),
        "<p class=\"muted\">billed = paid + contractual + patient responsibility + other adjustments + written "
        "off + open balance; the open balance includes denied amounts until they are corrected or written off.</p>",
        "<h2>Patient accounts</h2>", _table(patient_table, money_cols),
        "<p class=\"muted\">patient responsibility = patient paid + patient written off + billed to a secondary "
        "+ patient balance.</p>",
        "<h3>Write-offs by reason</h3>", _table(write_offs, money_cols),
        "<h2>AR aging</h2>", aging_svg, _table(aged_out, money_cols),
        "<h2>Denials by root cause</h2>", pareto_svg, _table(pareto_out, money_cols),
        "<h3>Recoverable (correctable and within the filing limit)</h3>", _table(recoverable, money_cols),
        "<h2>Payments</h2>", payments_svg, _table(deposit_ties, money_cols),
        "<h2>Work queue</h2>", _table(summary, money_cols),
    ]
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>otedi finance report "
            f"{today.isoformat()}</title><style>{CSS}</style></head><body>{''.join(body)}</body></html>\n")


def write_html_report(path: str | Path, *, today: date | None = None) -> Path:
    """Write the self-contained HTML report to `path`."""
    path = Path(path)
    private_dir(path.parent)
    return write_private_text(path, render_report(today))
