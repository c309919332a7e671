"""One self-contained HTML finance report for a practice's finance lead.

For a range of dates (of service, or of posting) it shows: the key figures
and KPIs, where the billed dollars went, breakdowns by practice, payer and
rendering provider, AR aging, denials (root causes, by payer, CPT and
provider, the monthly trend, what is still recoverable), payments and the
deposit tie-out, and the work queue's actual items with their next steps.

Every figure comes from the analytics modules' public functions
(reconcile, summary, aging, denials, kpis, workqueue) over one warehouse snapshot;
this module only selects the claims of the range and lays the figures out.
Charts are matplotlib SVG inline (otedi.analytics.charts); the CSS is
inline; there is no script, font, image or link to load, and no http(s)
reference at all, so the file opens anywhere without a network. Ids only
(claim, payer, practice, NPI, patient id) and the rendering providers'
names; no patient names, birth dates or member ids.

The range selects claims:

    basis="service"   claims whose first date of service is within date_from..date_to
    basis="posting"   claims with an 835 posting whose payment date (BPR16), or a practice posting
                      (patient payment, write-off) made, within date_from..date_to

A claim in the range counts with all its postings up to `today` (so each
claim's identity billed = paid + adjustments + open still holds); balances
and ages are as of `today`. An open end of the range is the earliest or
latest date there is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from html import escape
from pathlib import Path

import pandas as pd

from otedi import config
from otedi.analytics import aging, charts, denials, kpis, reconcile, summary, workqueue
from otedi.analytics.snapshot import Snapshot, dollars, load_snapshot, money_text
from otedi.files import private_dir, write_private_text

BASES = ("service", "posting")
WORK_ITEMS_SHOWN = 40  # per reason
DEPOSITS_SHOWN = 60

CSS = """
:root{--ink:#1d2733;--muted:#5b6675;--line:#dfe3e8;--soft:#f5f7fa;--accent:#1f4e79;--bad:#b03a2e;--ok:#2a7d4f}
*{box-sizing:border-box}
body{font-family:"DejaVu Sans","Liberation Sans",Arial,Helvetica,sans-serif;margin:0;color:var(--ink);
background:#fff;font-size:14px;line-height:1.4}
main{max-width:1180px;margin:0 auto;padding:24px 28px 48px}
header.top{border-bottom:3px solid var(--accent);padding-bottom:12px;margin-bottom:8px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:36px 0 8px;padding-bottom:4px;
border-bottom:1px solid var(--line);color:var(--accent)}h3{font-size:15px;margin:20px 0 6px}
.muted{color:var(--muted);font-size:12.5px}.range{font-size:15px;margin:2px 0}
nav{font-size:13px;margin:10px 0 0}nav a{color:var(--accent);margin-right:14px;text-decoration:none}
.tiles{display:grid;grid-template-columns:repeat(6,1fr);gap:10px;margin:10px 0}
.tiles.four{grid-template-columns:repeat(4,1fr)}
.tile{border:1px solid var(--line);border-radius:8px;padding:10px 12px;background:var(--soft)}
.tile .label{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.03em}
.tile .value{display:block;font-size:24px;font-weight:bold;margin:2px 0;font-variant-numeric:tabular-nums}
.tile .sub{font-size:12px;color:var(--muted)}
.tile.warn .value{color:var(--bad)}
table{border-collapse:collapse;width:100%;margin:6px 0 4px;font-size:12.5px}
th,td{padding:4px 7px;border-bottom:1px solid var(--line);vertical-align:top;text-align:left}
th{background:var(--soft);font-weight:bold;border-bottom:2px solid #c9d0d8;white-space:nowrap}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.total td{font-weight:bold;border-top:2px solid #c9d0d8;background:var(--soft)}
td.wrap{min-width:220px;max-width:420px}td .sub{display:block;color:var(--muted);font-size:11.5px}
.tag{display:inline-block;padding:1px 6px;border-radius:9px;font-size:11.5px;
background:#e8eef5;color:var(--accent);white-space:nowrap}.tag.p1,.tag.p2{background:#f8e1de;color:var(--bad)}
.tag.p3,.tag.p4{background:#fcefd9;color:#8a5a00}.ok{color:var(--ok)}.bad{color:var(--bad);font-weight:bold}
a.plain{color:inherit;text-decoration:none}svg.chart{display:block;max-width:100%;height:auto;margin:4px 0}
.note{font-size:12.5px;color:var(--muted);margin:4px 0 10px}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:18px}
@media (max-width:900px){.tiles,.tiles.four{grid-template-columns:repeat(2,1fr)}.cols{grid-template-columns:1fr}}
@media print{main{max-width:none;padding:0}h2{break-after:avoid}table{break-inside:auto}tr{break-inside:avoid}}
"""

REASON_LABELS = {
    "approaching_timely_filing": "Filing limit near", "rejected": "Rejected", "denied": "Denied",
    "reversed": "Payment reversed", "no_835": "No payer response", "underpaid": "Underpaid",
    "secondary_claim_due": "Bill the secondary", "patient_balance_due": "Patient balance",
}
URGENT = ("approaching_timely_filing", "rejected")
BY_AMOUNT = ("secondary_claim_due", "patient_balance_due")  # listed largest first, without the payer's filing limit
KPI_LABELS = {
    "clean_claim_rate": "Clean-claim rate", "first_pass_resolution_rate": "First-pass resolution",
    "denial_rate": "Denial rate", "days_in_ar": "Days in AR", "net_collection_rate": "Net collection rate",
    "patient_collection_rate": "Patient collection rate", "write_off_rate": "Write-off rate",
    "unapplied_credit": "Unapplied patient credit",
}
SPLIT = [("Paid", "paid", "#2a7d4f"), ("Contractual", "contractual", "#9aa5b1"),
         ("Patient responsibility", "patient_responsibility", "#e9a23b"),
         ("Other adjustments", "other_adjustments", "#6c4f9c"), ("Written off", "written_off", "#7b4b2a"),
         ("Denied, open", "denied_open", "#c0392b"), ("Awaiting payer", "awaiting_payer", "#5dade2")]
STATUS_ORDER = ("held", "ready", "batched", "quarantined", "submitted", "accepted", "rejected", "paid",
                "partially_paid", "patient_balance", "denied", "reversed", "forwarded", "crossed_over", "voided")
BUCKET_LABELS = {"0-30": "0–30 days", "31-60": "31–60", "61-90": "61–90", "91-120": "91–120", "120+": "Over 120"}


@dataclass(frozen=True)
class Col:
    key: str
    label: str
    kind: str = "text"  # text | money (cents or Decimal) | int | rate | date | wrap | html


# ---------------------------------------------------------------------------------------------------------------
# Formatting


def _money(value) -> str:
    if value is None or (not isinstance(value, Decimal) and pd.isna(value)):
        return ""
    return money_text(value if isinstance(value, Decimal) else int(value))


def _rate(value) -> str:
    if value is None or pd.isna(value):
        return "–"
    return f"{Decimal(value) * 100:.1f}%"


def _day(value: date | None) -> str:
    return "" if value is None or pd.isna(value) else f"{value.day} {value:%b %Y}"


def _month(key: str) -> str:
    return pd.Period(key, freq="M").strftime("%b %Y")


def _cell(col: Col, value) -> str:
    if col.kind == "money":
        return f'<td class="n">{_money(value)}</td>'
    if col.kind == "int":
        return f'<td class="n">{"" if value is None or pd.isna(value) else f"{int(value):,}"}</td>'
    if col.kind == "rate":
        return f'<td class="n">{_rate(value)}</td>'
    if col.kind == "date":
        return f'<td class="n">{"" if value is None or pd.isna(value) else value.isoformat()}</td>'
    if col.kind == "html":  # markup this module made (a tag), never data
        return f"<td>{value or ''}</td>"
    text = "" if value is None or (not isinstance(value, str) and pd.isna(value)) else escape(str(value))
    if col.kind == "wrap":
        return f'<td class="wrap">{text}</td>'
    return f"<td>{text}</td>"


def _table(rows: list[dict], cols: list[Col], *, total: dict | None = None, limit: int | None = None,
           empty: str = "None.", more: str = "") -> str:
    if not rows:
        return f'<p class="note">{escape(empty)}</p>'
    head = "".join(f'<th class="n">{escape(c.label)}</th>' if c.kind in ("money", "int", "rate", "date")
                   else f"<th>{escape(c.label)}</th>" for c in cols)
    shown = rows if limit is None else rows[:limit]
    body = ["<tr>" + "".join(_cell(c, r.get(c.key)) for c in cols) + "</tr>" for r in shown]
    if total:
        body.append('<tr class="total">' + "".join(_cell(c, total.get(c.key)) for c in cols) + "</tr>")
    tail = ""
    if limit is not None and len(rows) > limit:
        tail = f'<p class="note">{len(rows) - limit:,} more {more or "rows"} in the exports.</p>'
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{tail}"


def _tile(label: str, value: str, sub: str = "", warn: bool = False) -> str:
    return (f'<div class="tile{" warn" if warn else ""}"><span class="label">{escape(label)}</span>'
            f'<span class="value">{escape(value)}</span><span class="sub">{escape(sub)}</span></div>')


# ---------------------------------------------------------------------------------------------------------------
# Names


def _practice_names() -> dict[str, str]:
    try:
        return {k: p.name.title().replace("Pllc", "PLLC").replace("Llc", "LLC").replace("Ot ", "OT ")
                for k, p in config.practices().items()}
    except Exception:  # noqa: BLE001 - a report without the practices file still shows the ids
        return {}


def _write_off_reasons() -> dict[str, str]:
    """Write-off reason key -> its label (mappings/ar/adjustment_reasons.yaml)."""
    from otedi.actions.adjustments import reasons  # actions import analytics: not at module level

    try:
        return {k: r.label for k, r in reasons().items()}
    except Exception:  # noqa: BLE001 - a report without the reasons file still shows the keys
        return {}


def _provider_names() -> dict[str, str]:
    """Rendering NPI -> "First Last, ROLE" from the charges (providers, not patients)."""
    from sqlalchemy import select

    from otedi.warehouse import models
    from otedi.warehouse.db import session_scope

    with session_scope() as s:
        rows = s.execute(select(models.Charge.rendering_npi, models.Charge.rendering_first_name,
                                models.Charge.rendering_last_name, models.Charge.rendering_role).distinct()).all()
    return {npi: f"{(first or '').title()} {(last or '').title()}, {role}".strip() for npi, first, last, role in rows}


# ---------------------------------------------------------------------------------------------------------------
# The range


def _posting_days(snap: Snapshot) -> pd.DataFrame:
    """(claim_pk, day) of every posting: 835 entries by payment date, practice postings by the day made."""
    ledger = snap.postings[snap.postings["claim_pk"].notna()]
    days = [d if isinstance(d, date) else t.date() for d, t in zip(ledger["payment_date"], ledger["posted_at"])]
    account = snap.account[snap.account["claim_pk"].notna()]
    return pd.DataFrame({
        "claim_pk": [*ledger["claim_pk"].astype("int64"), *account["claim_pk"].astype("int64")],
        "day": [*days, *(t.date() for t in account["posted_at"])],
    })


def select_claims(snap: Snapshot, claims: pd.DataFrame, date_from: date | None, date_to: date | None,
                  basis: str) -> tuple[pd.DataFrame, date | None, date | None]:
    """The claims of the range, and the range with its open ends filled in."""
    if basis not in BASES:
        raise ValueError(f"report basis {basis!r}: use one of {', '.join(BASES)}")
    if date_from and date_to and date_from > date_to:
        raise ValueError(f"report range {date_from}..{date_to}: the first date is after the last")
    if basis == "service":
        days = pd.DataFrame({"claim_pk": claims["claim_pk"], "day": claims["service_date_from"]})
    else:
        days = _posting_days(snap)
    days = days[days["day"].notna()]
    lo = date_from or (min(days["day"]) if len(days) else None)
    hi = date_to or (max(days["day"]) if len(days) else None)
    if lo and hi and lo > hi:  # an open end past the data: the range is the one day given
        lo, hi = (lo, lo) if date_to is None else (hi, hi)
    inside = days.loc[pd.Series([(lo is None or d >= lo) and (hi is None or d <= hi) for d in days["day"]],
                                index=days.index, dtype=bool)]
    return claims[claims["claim_pk"].isin(set(inside["claim_pk"]))].copy(), lo, hi


# ---------------------------------------------------------------------------------------------------------------
# Figures


def _breakdown(sub: pd.DataFrame, key: str, names: dict[str, str]) -> tuple[list[dict], dict]:
    """Per `key` value: claims, money, AR (live claims), denial and net collection rates."""
    rows = []
    for value, group in sub.groupby(key, dropna=False, sort=False):
        rows.append(_figures(group) | {"key": value, "name": names.get(value, value)})
    rows.sort(key=lambda r: (-r["billed"], str(r["key"])))
    return rows, _figures(sub) | {"name": "All"}


def _figures(group: pd.DataFrame) -> dict:
    """summary.figures (the sums `otedi run` and the finance tables use) and the group's rates."""
    adjudicated = group[group["adjudicated"]]
    collectible = int(adjudicated["billed"].sum() - adjudicated["contractual"].sum())
    return summary.figures(group) | {
        "denial_rate": denials.rate_figures(group)["claim_rate"],
        "collection_rate": denials.ratio(int(adjudicated["paid"].sum()), collectible),
    }


BREAKDOWN_COLS = [Col("claims", "Claims", "int"), Col("billed", "Billed", "money"), Col("paid", "Paid", "money"),
                  Col("contractual", "Contractual", "money"),
                  Col("patient_responsibility", "Patient resp.", "money"), Col("denied", "Denied", "money"),
                  Col("insurance_ar", "Insurance AR", "money"), Col("patient_ar", "Patient AR", "money"),
                  Col("denial_rate", "Denial rate", "rate"), Col("collection_rate", "Net collection", "rate")]


def _kpi_tiles(rows: list[dict]) -> str:
    tiles = []
    for r in rows:
        value, unit = r["value"], r["unit"]
        if value is None:
            shown = "n/a"
        elif unit == "ratio":
            shown = _rate(value)
        elif unit == "days":
            shown = f"{value} days"
        else:
            shown = money_text(value)
        if unit == "ratio" and "." in r["numerator"] + r["denominator"]:  # dollars over dollars
            sub = f"{money_text(Decimal(r['numerator']))} of {money_text(Decimal(r['denominator']))}"
        elif unit == "ratio":
            sub = f"{int(r['numerator']):,} of {int(r['denominator']):,} claims"
        elif unit == "days":
            sub = f"{money_text(Decimal(r['numerator']))} open ÷ 90-day charges/day"
        else:
            sub = "on account, not applied"
        warn = (r["kpi"] == "denial_rate" and value is not None and value > Decimal("0.10")) or \
               (r["kpi"] == "days_in_ar" and value is not None and value > 45)
        tiles.append(_tile(KPI_LABELS.get(r["kpi"], r["kpi"].replace("_", " ")), shown, sub, warn))
    return '<div class="tiles four">' + "".join(tiles) + "</div>"


def _month_of(day: date) -> str:
    return day.strftime("%Y-%m")


def render_report(today: date | None = None, *, date_from: date | None = None, date_to: date | None = None,
                  basis: str = "service", snap: Snapshot | None = None) -> str:
    """The report as one HTML string (see the module docstring for the range)."""
    today = today or date.today()
    snap = snap or load_snapshot()
    every = reconcile.claim_frame(snap, today)
    scoped, lo, hi = select_claims(snap, every, date_from, date_to, basis)
    pks = set(scoped["claim_pk"])
    ids = set(scoped["claim_id"])
    sub = scoped[scoped["in_ar"]]
    unsent = scoped[~scoped["in_ar"]]
    practices = _practice_names()
    providers = _provider_names()
    payers = dict(zip(every["payer_id"], every["payer_name"]))
    fig = _figures(sub)

    kpi_rows = kpis.kpi_values(snap, scoped, today)
    aged = aging.aging_frame(scoped, today)
    detail_all = denials.denial_frame(snap, every, today)
    detail = detail_all[detail_all["claim_pk"].isin(pks)]
    trend = denials.trend_frame(snap, scoped)
    queue = workqueue.work_queue_frame(snap, today, every, detail=detail_all)
    queue = queue[queue["claim_id"].isin(ids) & (queue["state"] != "done")]
    pays = reconcile.payments(snap)
    ledger = snap.postings[snap.postings["claim_pk"].isin(pks)]
    touched = set(ledger["remittance_id"])
    if basis == "posting":
        deposits = pays.loc[pd.Series([isinstance(d, date) and lo is not None and lo <= d <= hi
                                       for d in pays["payment_date"]], index=pays.index, dtype=bool)]
    else:
        deposits = pays[pays["remittance_id"].isin(touched)]

    basis_text = ("Dates of service" if basis == "service" else "Posting dates (835 payment date, practice postings)")
    span = f"{_day(lo)} – {_day(hi)}" if lo else "no claims yet"
    out: list[str] = []
    out.append(
        '<header class="top"><h1>Finance report</h1>'
        f'<p class="range"><b>{escape(basis_text)}:</b> {escape(span)} &nbsp;·&nbsp; <b>as of</b> {_day(today)}</p>'
        f'<p class="muted">{escape(", ".join(practices.get(p, p) for p in sorted(set(scoped["practice_id"]))))}'
        f'{" — " if len(scoped) else ""}{_count(len(sub), "claim")} submitted'
        f'{f", {len(unsent):,} not sent" if len(unsent) else ""}. '
        "All figures come from the posting ledger (835s, reversals included) and the practice's own postings; "
        "balances and ages are as of the as-of date.</p>"
        '<nav><a href="#summary">Summary</a><a href="#breakdowns">Practices, payers, providers</a>'
        '<a href="#patients">Patient accounts</a><a href="#aging">AR aging</a><a href="#denials">Denials</a>'
        '<a href="#payments">Payments</a><a href="#work">Work queue</a></nav></header>')

    # -- summary ---------------------------------------------------------------------------------------------
    recoverable = int(detail["recoverable_amount"].sum()) if len(detail) else 0
    out.append('<section id="summary"><h2>Summary</h2><div class="tiles">')
    out.append(_tile("Billed", money_text(fig["billed"]), f"{_count(fig['claims'], 'claim')} submitted"))
    out.append(_tile("Paid by payers", money_text(fig["paid"]),
                     f"{_rate(denials.ratio(fig['paid'], fig['billed']))} of billed"))
    out.append(_tile("Insurance AR", money_text(fig["insurance_ar"]), "open with payers"))
    out.append(_tile("Patient balances", money_text(fig["patient_ar"]), "owed by patients"))
    out.append(_tile("Denied, still open", money_text(fig["denied_open"]),
                     f"{money_text(recoverable)} recoverable", warn=fig["denied_open"] > 0))
    out.append(_tile("Work items", f"{len(queue):,}", f"{money_text(int(queue['amount'].sum()))} at stake"))
    out.append("</div>")
    out.append("<h3>Revenue-cycle KPIs</h3>" + _kpi_tiles(kpi_rows))

    parts = [(name, dollars(fig[key]), color) for name, key, color in SPLIT if fig[key] > 0]
    if parts:
        out.append("<h3>Where the billed dollars went</h3>")
        out.append(charts.split_bar("split", "Where the billed dollars went", [p[:2] for p in parts],
                                    colors=[p[2] for p in parts]))
    superseded = int(sub.loc[sub["superseded_by"].notna(), "open_balance"].sum())
    recon = [{"name": label, "amount": fig[key]} for label, key in (
        ("Billed", "billed"), ("Paid by payers", "paid"), ("Contractual adjustments", "contractual"),
        ("Patient responsibility", "patient_responsibility"), ("Other adjustments", "other_adjustments"),
        ("Written off (insurance)", "written_off"), ("Open balance", "open_balance"),
        ("   of which denied, not yet corrected or written off", "denied_open"),
        ("   of which awaiting the payer", "awaiting_payer"))]
    patient = [{"name": label, "amount": fig[key]} for label, key in (
        ("Patient responsibility", "patient_responsibility"), ("Paid by patients", "patient_paid"),
        ("Written off (patient)", "patient_written_off"), ("Billed to a secondary payer", "to_secondary"),
        ("Still owed by patients", "patient_balance"))]
    amount_cols = [Col("name", ""), Col("amount", "Amount", "money")]
    out.append('<div class="cols"><div><h3>Reconciliation</h3>' + _table(recon, amount_cols)
               + '<p class="note">Billed = paid + contractual + patient responsibility + other adjustments + '
               "written off + open balance. Denied dollars stay open until corrected, appealed or written off.")
    if superseded:
        out.append(f" {money_text(superseded)} of the open balance is on claims replaced, voided or resubmitted; "
                   "AR counts their successors instead.")
    statuses = scoped.groupby("status").agg(claims=("claim_pk", "size"), billed=("billed", "sum"),
                                            open=("open_balance", "sum")).reset_index()
    statuses["order"] = [STATUS_ORDER.index(v) if v in STATUS_ORDER else len(STATUS_ORDER) for v in statuses["status"]]
    rows = [{"status": r["status"].replace("_", " ").capitalize(), "claims": r["claims"], "billed": r["billed"],
             "open": r["open"]} for r in statuses.sort_values(["order", "status"]).to_dict("records")]
    out.append('</p></div><div><h3>Claims by status</h3>' + _table(
        rows, [Col("status", "Status"), Col("claims", "Claims", "int"), Col("billed", "Billed", "money"),
               Col("open", "Open balance", "money")], empty="No claims.") + "</div></div>")
    if len(unsent):
        held = unsent.groupby("status").agg(claims=("claim_pk", "size"), billed=("billed", "sum")).reset_index()
        out.append('<p class="note"><b>Not sent, not in AR:</b> ' + "; ".join(
            f"{r.claims} {escape(r.status)} ({money_text(int(r.billed))})" for r in held.itertuples())
            + " — a held claim waits for a biller (otedi claims review, release or void).</p>")
    out.append("</section>")

    # -- breakdowns ------------------------------------------------------------------------------------------
    out.append('<section id="breakdowns"><h2>By practice, payer and provider</h2>')
    for title, key, names, label in (("Practices", "practice_id", practices, "Practice"),
                                     ("Payers", "payer_id", payers, "Payer"),
                                     ("Rendering providers", "rendering_npi", providers, "Provider")):
        rows, total = _breakdown(sub, key, names)
        for r in rows:
            r["label"] = escape(str(r["name"])) + (f'<span class="sub">{"NPI" if key == "rendering_npi" else "id"} '
                                                   f'{escape(str(r["key"]))}'
                                                   "</span>" if key != "practice_id" or r["name"] == r["key"] else "")
        total["label"] = "All"
        out.append(f"<h3>{title}</h3>" + _table(rows, [Col("label", label, "html"), *BREAKDOWN_COLS],
                                                total=total if len(rows) > 1 else None))
        if key == "payer_id" and rows:
            top = rows[:8]
            out.append(charts.bars("payers", "Billed, paid and open by payer", [_short(r["name"]) for r in top],
                                   [("Billed", [dollars(r["billed"]) for r in top]),
                                    ("Paid", [dollars(r["paid"]) for r in top]),
                                    ("Insurance AR", [dollars(r["insurance_ar"]) for r in top])],
                                   horizontal=True, height=90 + 40 * len(top)))
    out.append('<p class="note">Insurance AR and patient AR leave out claims replaced, voided or resubmitted '
               "(their successor carries the balance). Denial rate: claims with any denied amount / claims "
               "adjudicated. Net collection: payer payments / (billed − contractual), adjudicated claims.</p>")
    out.append("</section>")

    # -- patient accounts ------------------------------------------------------------------------------------
    credit = next((r["value"] for r in kpi_rows if r["kpi"] == "unapplied_credit"), None) or Decimal("0.00")
    patient.append({"name": "Unapplied patient credit (on account)", "amount": credit})
    offs = snap.account[(snap.account["entry_type"] == "write_off") & snap.account["claim_pk"].isin(pks)]
    labels = _write_off_reasons()
    rows = [{"side": side, "reason": f'{escape(labels.get(reason, str(reason)))}<span class="sub">{escape(str(reason))}'
                                     "</span>", "entries": len(group), "amount": int(group["amount_c"].sum())}
            for (side, reason), group in offs.groupby(["side", "reason"], dropna=False)]
    out.append('<section id="patients"><h2>Patient accounts</h2><div class="cols"><div><h3>Patient responsibility'
               "</h3>" + _table(patient, amount_cols) + '<p class="note">Patient responsibility = paid by patients + '
               "written off + billed to a secondary + still owed.</p></div><div><h3>Write-offs by reason</h3>"
               + _table(rows, [Col("side", "Side"), Col("reason", "Reason", "html"), Col("entries", "Entries", "int"),
                               Col("amount", "Amount", "money")], empty="No write-offs.") + "</div></div></section>")

    # -- aging -----------------------------------------------------------------------------------------------
    out.append('<section id="aging"><h2>AR aging</h2><p class="note">Days since the claim was first submitted '
               f"(its 837P was written), as of {_day(today)}.</p>")
    for kind, title in (("insurance", "Insurance balances"), ("patient", "Patient balances")):
        part = aged[aged["balance_type"] == kind]
        by_payer = part.groupby(["payer_id", "payer_name"], as_index=False, dropna=False)[
            [*aging.BUCKETS, "total", "claims"]].sum().sort_values("total", ascending=False)
        rows = [{"payer": r["payer_name"], **{b: r[b] for b in aging.BUCKETS}, "total": r["total"],
                 "claims": r["claims"]} for r in by_payer.to_dict("records")]
        total = {"payer": "All payers", **{b: int(by_payer[b].sum()) for b in aging.BUCKETS},
                 "total": int(by_payer["total"].sum()), "claims": int(by_payer["claims"].sum())}
        out.append(f"<h3>{title}</h3>")
        if kind == "insurance" and rows:
            top = rows[:5]
            series = [(_short(r["payer"]), [dollars(r[b]) for b in aging.BUCKETS]) for r in top]
            if len(rows) > 5:
                series.append(("Other payers", [dollars(sum(r[b] for r in rows[5:])) for b in aging.BUCKETS]))
            out.append(charts.bars("aging", "Insurance AR by age and payer", list(BUCKET_LABELS.values()), series,
                                   stacked=True, height=280))
        out.append(_table(rows, [Col("payer", "Payer"), *(Col(b, BUCKET_LABELS[b], "money") for b in aging.BUCKETS),
                                 Col("total", "Total", "money"), Col("claims", "Claims", "int")],
                          total=total if len(rows) > 1 else None, empty=f"No {kind} balances."))
    out.append("</section>")

    # -- denials ---------------------------------------------------------------------------------------------
    out.append('<section id="denials"><h2>Denials</h2>')
    rates = denials.rate_figures(sub)
    out.append(f'<p class="note">{rates["denied_claims"]:,} of {rates["adjudicated_claims"]:,} adjudicated claims '
               f'had a denial ({_rate(rates["claim_rate"])}); {money_text(rates["denied_amount"])} of '
               f'{money_text(rates["adjudicated_billed"])} billed ({_rate(rates["dollar_rate"])}). Root causes come '
               "from the CARC and RARC codes (mappings/remit/denial_categories.yaml).</p>")
    if len(detail):
        pareto = denials.pareto_frame(detail, "category")
        out.append("<h3>Denied dollars by root cause</h3>")
        out.append(charts.pareto("pareto", "Denied dollars by root cause", list(pareto["label"]),
                                 [dollars(v) for v in pareto["denied"]], list(pareto["cumulative_share"])))
        fixes = dict(zip(detail["category"], detail["fix"]))
        rows = [{"label": r["label"], "denied": r["denied"], "lines": r["lines"], "claims": r["claims"],
                 "share": r["share"], "fix": fixes.get(r["value"], "")} for r in pareto.to_dict("records")]
        out.append(_table(rows, [Col("label", "Root cause"), Col("denied", "Denied", "money"),
                                 Col("claims", "Claims", "int"), Col("lines", "Lines", "int"),
                                 Col("share", "Share", "rate"), Col("fix", "What to do", "wrap")]))
        out.append('<div class="cols">')
        for by, title, names in (("payer", "By payer", payers), ("cpt", "By procedure code (CPT)", {}),
                                 ("rendering_provider", "By rendering provider", providers)):
            frame = denials.pareto_frame(detail, by)
            rows = [{"name": names.get(r["value"], r["label"]), "denied": r["denied"], "claims": r["claims"],
                     "share": r["share"]} for r in frame.to_dict("records")]
            heading = {"payer": "Payer", "cpt": "CPT"}.get(by, "Provider")
            out.append(f"<div><h3>{title}</h3>" + _table(rows, [Col("name", heading), Col("denied", "Denied", "money"),
                                                               Col("claims", "Claims", "int"),
                                                               Col("share", "Share", "rate")], limit=10) + "</div>")
        recov = denials.recoverable_by_category(detail)
        rows = [{"label": r["category_label"], "correctable": "yes" if r["correctable"] else "no",
                 "denied": r["denied"], "recoverable": r["recoverable"]} for r in recov.to_dict("records")]
        out.append("<div><h3>Still recoverable</h3>" + _table(
            rows, [Col("label", "Root cause"), Col("correctable", "Correctable"), Col("denied", "Denied", "money"),
                   Col("recoverable", "Recoverable", "money")]) + '<p class="note">Correctable, within the payer\'s '
            "filing limit, not replaced or voided.</p></div></div>")
    else:
        out.append('<p class="note">No denials on these claims.</p>')
    out.append("<h3>Denial trend by month of first adjudication</h3>")
    if len(trend):
        out.append(charts.trend("trend", "Denial trend", [_month(m) for m in trend["month"]],
                                [dollars(v) for v in trend["denied"]], list(trend["claim_rate"]),
                                list(trend["dollar_rate"])))
        rows = [{**r, "month": _month(r["month"])} for r in trend.to_dict("records")]
        out.append(_table(rows, [Col("month", "Month"), Col("adjudicated_claims", "Adjudicated", "int"),
                                 Col("denied_claims", "With a denial", "int"), Col("billed", "Billed", "money"),
                                 Col("denied", "Denied", "money"), Col("claim_rate", "Rate (claims)", "rate"),
                                 Col("dollar_rate", "Rate (dollars)", "rate")]))
    else:
        out.append('<p class="note">No claim adjudicated yet.</p>')
    out.append("</section>")

    # -- payments --------------------------------------------------------------------------------------------
    out.append('<section id="payments"><h2>Payments</h2>')
    paid = ledger[ledger["payments"] > 0]
    if len(paid):
        months = pd.DataFrame({"month": [_month_of(d if isinstance(d, date) else t.date())
                                         for d, t in zip(paid["payment_date"], paid["posted_at"])],
                               "amount": paid["paid_c"].to_numpy()}).groupby("month")["amount"].sum()
        patient_paid = snap.account[snap.account["claim_pk"].isin(pks)
                                    & (snap.account["entry_type"] == "patient_payment")]
        pmonths = pd.Series([int(a) for a in patient_paid["amount_c"]],
                            index=[_month_of(t.date()) for t in patient_paid["posted_at"]], dtype="int64")
        pmonths = pmonths.groupby(level=0).sum() if len(pmonths) else pmonths
        keys = sorted(set(months.index) | set(pmonths.index))
        out.append("<h3>Payments on these claims by month</h3>")
        out.append(charts.bars("paid", "Payments by month", [_month(k) for k in keys],
                               [("Payers (835)", [dollars(int(months.get(k, 0))) for k in keys]),
                                ("Patients", [dollars(int(pmonths.get(k, 0))) for k in keys])], height=260))
    dep = deposits.sort_values(["payment_date", "remittance_id"], ascending=[False, True])
    rows = [{"payment_date": r["payment_date"], "payer": r["payer_name"], "trace": r["trace_number"],
             "method": r["payment_method"], "bpr": r["bpr_amount"], "posted": r["posted_payments"],
             "plb": r["plb_total"], "difference": r["difference"], "claims": r["claims"],
             "<ties": '<span class="ok">ties</span>' if r["ties"] else '<span class="bad">does not tie</span>'}
            for r in dep.to_dict("records")]
    total = {"payer": f"{len(rows)} deposits", "bpr": sum(dep["bpr_amount"], Decimal("0.00")),
             "posted": sum(dep["posted_payments"], Decimal("0.00")), "plb": sum(dep["plb_total"], Decimal("0.00")),
             "difference": sum(dep["difference"], Decimal("0.00")), "claims": int(dep["claims"].sum())}
    where = "dated in the range" if basis == "posting" else "that paid these claims"
    out.append(f"<h3>Deposits (835s {where}) and their tie-out</h3>")
    out.append(_table(rows, [Col("payment_date", "Payment date", "date"), Col("payer", "Payer"),
                             Col("trace", "Trace number"), Col("method", "Method"), Col("bpr", "Deposit", "money"),
                             Col("posted", "Posted", "money"), Col("plb", "PLB", "money"),
                             Col("difference", "Difference", "money"), Col("claims", "Claims", "int"),
                             Col("<ties", "", "html")], total=total if len(rows) > 1 else None, limit=DEPOSITS_SHOWN,
                      more="deposits", empty="No 835 deposits."))
    out.append('<p class="note">Deposit = BPR02; it ties when deposit = posted − PLB (provider-level adjustments: '
               "positive is money the payer took back, negative is interest).</p>")
    later = [d for d in pays["payment_date"] if isinstance(d, date) and d > today]
    if later:
        # BPR16 is the date the payer's bank settles the EFT (or dates the check): an 835 often arrives days
        # before it, so these are posted to the claims but not yet in the bank.
        out.append(f'<p class="note"><b>In transit:</b> {len(later)} of these deposits settle after '
                   f"{_day(today)} (BPR16, the latest {_day(max(later))}): posted to the claims, not yet in the "
                   "bank statement of this date.</p>")
    unmatched = reconcile.unmatched_remittances(snap)
    held = reconcile.held_remittances(snap)
    if len(unmatched) or len(held):
        out.append(f'<p class="note"><b>Needs a look:</b> {len(unmatched)} claim payments that match none of our '
                   f"claims ({money_text(sum(unmatched['paid_amount'], Decimal('0.00')))} paid); {len(held)} 835 "
                   "transactions held (unbalanced or duplicate). Both lists are in the exports "
                   "(unmatched_remittances, held_remittances).</p>")
    out.append("</section>")

    # -- work queue ------------------------------------------------------------------------------------------
    out.append('<section id="work"><h2>Work queue</h2>')
    queue_summary = workqueue.work_queue_summary(queue)
    if len(queue_summary):
        by_reason = queue_summary.groupby("reason", sort=False).agg(items=("items", "sum"), amount=("amount", "sum"))
        out.append('<div class="tiles">' + "".join(
            f'<a class="plain" href="#work-{r}">'
            + _tile(REASON_LABELS.get(r, r), f"{int(v['items']):,}", f"{money_text(int(v['amount']))}", r in URGENT)
            + "</a>" for r, v in by_reason.iterrows()) + "</div>")
    out.append(f'<p class="note">{len(queue):,} open items, most urgent first, one per claim (ages and deadlines '
               f"as of {_day(today)}). Set an item's state with <code>otedi ar item</code>; every item is in "
               "<code>otedi ar worklist</code> and the work_queue export.</p>")
    if not len(queue):
        out.append('<p class="note">Nothing to work.</p>')
    for reason in workqueue.REASONS:
        items = queue[queue["reason"] == reason]
        if not len(items):
            continue
        if reason in BY_AMOUNT:
            items = items.sort_values(["amount", "claim_id"], ascending=[False, True])
        steps = set(items["next_step"])
        common = next(iter(steps)) if len(steps) == 1 else None
        out.append(f'<h3 id="work-{reason}">{escape(REASON_LABELS.get(reason, reason))}: {_count(len(items), "item")}, '
                   f"{money_text(int(items['amount'].sum()))}</h3>")
        if common:
            out.append(f'<p class="note"><b>Next step:</b> {escape(common)}</p>')
        rows = [{
            "claim": f'{escape(r["claim_id"])}<span class="sub">{escape(str(r["payer_name"]))}</span>'
                     f'<span class="sub">{escape(practices.get(r["practice_id"], r["practice_id"]))}</span>',
            "patient": r["patient_id"], "dos": r["service_date_from"], "amount": r["amount"], "detail": r["detail"],
            "next": r["next_step"], "deadline": f'{r["filing_deadline"].isoformat()}<span class="sub">'
                                                f'{_days_left(r["days_to_deadline"])}</span>',
            "state": r["state"].replace("_", " ") + (f' <span class="sub">{escape(str(r["state_by"]))}</span>'
                                                     if r["state_by"] else ""),
        } for r in items.to_dict("records")]
        cols = [Col("claim", "Claim", "html"), Col("patient", "Patient id"), Col("dos", "Service date", "date"),
                Col("amount", "Amount", "money"), Col("detail", "What happened", "wrap"),
                *([] if common else [Col("next", "Next step", "wrap")]),
                *([Col("deadline", "Filing limit", "html")] if reason not in BY_AMOUNT else []),
                Col("state", "State", "html")]
        out.append(_table(rows, cols, limit=WORK_ITEMS_SHOWN, more="items of this kind"))
    out.append("</section>")
    out.append(f'<p class="muted">Generated by otedi from the warehouse as of {today.isoformat()}. Claim, payer, '
               "practice and patient ids only; no patient names, birth dates or member ids.</p>")

    title = f"Finance report {lo.isoformat() if lo else ''}–{hi.isoformat() if hi else ''} (as of {today.isoformat()})"
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{CSS}</style></head>"
            f"<body><main>{''.join(out)}</main></body></html>\n")


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _days_left(days) -> str:
    if days is None or pd.isna(days):
        return ""
    days = int(days)
    return f"passed {-days} days ago" if days < 0 else "today" if days == 0 else f"{days} days left"


def _short(name: str, width: int = 28) -> str:
    name = str(name)
    return name if len(name) <= width else name[:width - 1].rstrip() + "…"


def write_html_report(path: str | Path, *, today: date | None = None, date_from: date | None = None,
                      date_to: date | None = None, basis: str = "service", snap: Snapshot | None = None) -> Path:
    """Write the self-contained HTML report to `path` (see render_report); returns the path."""
    html = render_report(today, date_from=date_from, date_to=date_to, basis=basis, snap=snap)
    path = Path(path)
    private_dir(path.parent)
    return write_private_text(path, html)
