"""A self-contained HTML report of a comparison, for readers who do not read code.

The figures are embedded as PNG data, so the single file can be opened from the MLflow UI's
artifact view, attached to an email or archived.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import polars as pl
from matplotlib.figure import Figure

from bandits.compare import INCONCLUSIVE, UNSUPPORTED, GuardrailCheck, PolicyComparison

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:980px;margin:2em auto;
color:#222;line-height:1.45;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em} .sub{color:#666;margin-top:0}
.verdict{font-size:1.25em;background:#f4f6f8;border-left:6px solid #1f4e79;padding:.8em 1em}
table{border-collapse:collapse;margin:1em 0;font-size:.92em}
th,td{border-bottom:1px solid #ddd;padding:.35em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}
.better{color:#1e8449;font-weight:600}.worse{color:#c0392b;font-weight:600}
.inconclusive{color:#7f8c8d;font-weight:600}
.unsupported{color:#b9770e;font-weight:600}
img{max-width:100%;margin:.5em 0} .note{color:#555;font-size:.9em}
"""


def figure_png(fig: Figure, dpi: int = 110) -> bytes:
    """``fig`` rendered as PNG bytes (render once, then embed and upload the same bytes)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _img(fig: Figure | bytes) -> str:
    png = fig if isinstance(fig, bytes) else figure_png(fig)
    data = base64.b64encode(png).decode()
    return f'<img alt="figure" src="data:image/png;base64,{data}">'


def _fmt(x: float | None, spec: str = ".4f") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return format(x, spec)


def comparison_table(
    comparisons: Sequence[PolicyComparison], has_truth: bool, *, baseline_row: bool = True
) -> str:
    """One row per comparison; with ``baseline_row`` the baseline's own value and cost come
    first (every comparison is against the same baseline)."""
    head = [
        "policy",
        "reward / impression",
        "vs baseline",
        "CI (level)",
        "relative",
        "verdict",
        "evidence",
        "Holm p",
        "unsubscribes / impr.",
        "Δ unsubscribes",
    ]
    if has_truth:
        head.insert(5, "exact Δ (simulator)")
    rows = []
    if baseline_row and comparisons:
        c = comparisons[0]
        cells = [
            f"{html.escape(c.baseline)} (baseline)",
            _fmt(c.baseline_value),
            *["–"] * (len(head) - 4),
            _fmt(c.baseline_cost, ".4f"),
            "–",
        ]
        rows.append("<tr>" + "".join(f"<td>{x}</td>" for x in cells) + "</tr>")
    for c in comparisons:
        cells = [
            html.escape(c.policy),
            _fmt(c.value),
            _fmt(c.diff, "+.4f"),
            f"[{_fmt(c.ci_low, '+.4f')}, {_fmt(c.ci_high, '+.4f')}] ({c.ci_level:.1%})",
            _fmt(c.relative_lift, "+.1%"),
            f'<span class="{c.verdict}">{c.verdict}</span>',
            html.escape(c.evidence),
            _fmt(c.p_adjusted, ".2g"),
            _fmt(c.cost, ".4f"),
            _fmt(c.cost_diff, "+.4f"),
        ]
        if has_truth:
            cells.insert(5, _fmt(c.true_diff, "+.4f"))
        rows.append("<tr>" + "".join(f"<td>{x}</td>" for x in cells) + "</tr>")
    return _table(head, rows)


def group_table(groups: pl.DataFrame, policy: str) -> str:
    sub = groups.filter(pl.col("policy") == policy)
    rows = []
    for r in sub.iter_rows(named=True):
        rows.append(
            f"<tr><td>{html.escape(r['dimension'])} = {html.escape(str(r['group']))}</td>"
            f"<td>{r['n']:,}</td><td>{_fmt(r['diff'], '+.4f')}</td>"
            f"<td>[{_fmt(r['ci_low'], '+.4f')}, {_fmt(r['ci_high'], '+.4f')}]</td>"
            f"<td>{_fmt(r['relative_lift'], '+.1%')}</td>"
            f'<td><span class="{r["verdict"].split()[0]}">'
            f"{html.escape(r['verdict'])}</span></td></tr>"
        )
    return (
        "<table><tr><th>group</th><th>impressions</th><th>Δ reward</th><th>interval</th>"
        "<th>relative</th><th>verdict</th></tr>" + "".join(rows) + "</table>"
    )


def pairs_table(pairs: Sequence[PolicyComparison]) -> str:
    """The rung-vs-rung comparisons (same family as the baseline comparisons)."""
    rows = []
    for c in pairs:
        cells = [
            f"{html.escape(c.policy)} vs {html.escape(c.baseline)}",
            _fmt(c.diff, "+.4f"),
            f"[{_fmt(c.ci_low, '+.4f')}, {_fmt(c.ci_high, '+.4f')}] ({c.ci_level:.1%})",
            _fmt(c.relative_lift, "+.1%"),
            f'<span class="{c.verdict}">{c.verdict}</span>',
            _fmt(c.p_adjusted, ".2g"),
        ]
        rows.append("<tr>" + "".join(f"<td>{x}</td>" for x in cells) + "</tr>")
    head = ["pair", "Δ reward / impression", "CI (level)", "relative", "verdict", "Holm p"]
    return _table(head, rows)


def _table(head: Sequence[str], rows: Sequence[str]) -> str:
    """An HTML table from header cells and ready ``<tr>`` rows."""
    return (
        "<table><tr>"
        + "".join(f"<th>{h}</th>" for h in head)
        + "</tr>"
        + "".join(rows)
        + "</table>"
    )


def guardrail_table(guardrails: Mapping[str, GuardrailCheck]) -> str:
    """Each rung's unsubscribes per 1,000 impressions against the budget."""
    rows = []
    for g in guardrails.values():
        extra = f"{g.extra[0]:+.2f} [{g.extra[1]:+.2f}, {g.extra[2]:+.2f}]" if g.extra else "–"
        rows.append(
            f"<tr><td>{html.escape(g.rung)}</td>"
            f"<td>{g.rate[0]:.2f} [{g.rate[1]:.2f}, {g.rate[2]:.2f}]</td><td>{extra}</td>"
            f"<td>{g.level:.1%}</td><td>{html.escape(g.status)}</td></tr>"
        )
    return (
        "<table><tr><th>rung</th><th>unsubscribes / 1,000 (CI)</th><th>vs baseline (CI)</th>"
        "<th>level</th><th>budget</th></tr>" + "".join(rows) + "</table>"
    )


def diagnostics_table(comparisons: Sequence[PolicyComparison]) -> str:
    """Over replications: the spread of the exact Δ across runs next to what one run's batch
    means claim, and the mean realised Δ."""
    rows = []
    for c in comparisons:
        if not c.replications or c.within_stderr is None:
            continue
        spread = c.stderr * math.sqrt(c.replications)
        ratio = spread / c.within_stderr if c.within_stderr > 0 else math.nan
        rows.append(
            f"<tr><td>{html.escape(c.policy)} vs {html.escape(c.baseline)}</td>"
            f"<td>{_fmt(c.diff, '+.4f')}</td><td>{_fmt(c.observed_diff, '+.4f')}</td>"
            f"<td>{_fmt(spread)}</td><td>{_fmt(c.within_stderr)}</td>"
            f"<td>{_fmt(ratio, '.1f')}</td></tr>"
        )
    if not rows:
        return ""
    return (
        "<table><tr><th>pair</th><th>exact Δ (mean over runs)</th><th>realised Δ (mean)</th>"
        "<th>sd of exact Δ across runs</th><th>one run's batch-means se</th><th>ratio</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def write_report(
    path: str | Path,
    *,
    title: str,
    subtitle: str,
    headline: str,
    comparisons: Sequence[PolicyComparison],
    figures: Mapping[str, Figure | bytes],
    groups: pl.DataFrame | None,
    focus: Sequence[str],
    method_notes: Sequence[str],
    estimand: str = "",
    pairs: Sequence[PolicyComparison] = (),
    guardrails: Mapping[str, GuardrailCheck] | None = None,
    guardrail_budget: str | None = None,
    group_note: str = "",
    notes: Sequence[str] = (),
) -> Path:
    """Write the report to ``path`` (atomically) and return it. ``figures``: title → a
    matplotlib Figure or its PNG bytes (:func:`figure_png`). ``estimand``: the question
    answered, in one line; ``pairs``: the rung-vs-rung comparisons of the same family;
    ``guardrails``: each rung against the unsubscribe budget ``guardrail_budget``;
    ``group_note``: how the who-gains tables control their claims; ``notes``: caveats shown
    under the headline."""
    has_truth = any(c.true_diff is not None for c in comparisons)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><p class='sub'>{html.escape(subtitle)}</p>",
    ]
    if estimand:
        parts.append(f"<p><b>The question answered:</b> {html.escape(estimand)}.</p>")
    parts.append(f"<p class='verdict'>{html.escape(headline)}</p>")
    parts += [f"<p class='note'>{html.escape(n)}.</p>" for n in notes]
    parts += [
        "<h2>Every policy against the baseline</h2>",
        comparison_table(comparisons, has_truth),
        "<ul>" + "".join(f"<li>{html.escape(c.sentence())}</li>" for c in comparisons) + "</ul>",
    ]
    if pairs:
        parts += [
            "<h2>The rest of the ladder</h2>",
            "<p class='note'>Rung against rung, in the same family as the comparisons with the "
            "baseline (one Holm family over every pair).</p>",
            pairs_table(pairs),
        ]
    if guardrails:
        parts += [
            "<h2>Cost: unsubscribes per 1,000 impressions</h2>",
            f"<p>Budget: {html.escape(guardrail_budget or 'none')}.</p>",
            guardrail_table(guardrails),
        ]
    diagnostics = diagnostics_table([*comparisons, *pairs])
    if diagnostics:
        parts += [
            "<h2>One run against many</h2>",
            "<p class='note'>What a single run's batch means would have claimed, next to how "
            "much runs of the same campaign actually differ (a diagnostic, not the "
            "verdict).</p>",
            diagnostics,
        ]
    unsupported = [c for c in comparisons if c.verdict == UNSUPPORTED]
    if unsupported:
        parts.append("<h2>What this log cannot answer</h2><ul>")
        for c in unsupported:
            parts.append(f"<li>{html.escape(c.reason)}</li>")
        parts.append(
            "</ul><p class='note'>More rows from the same logger never reveal what it never "
            "tried; only data in which these variants are shown (a randomised pilot, or "
            "exploration in production) can.</p>"
        )
    unclear = [c for c in comparisons if c.verdict == INCONCLUSIVE]
    if unclear:
        parts.append("<h2>What a clear answer would take</h2><ul>")
        for c in unclear:
            unit, this = (
                ("impressions", "this run")
                if c.unit != "replications"
                else (
                    "replications of the campaign",
                    "this comparison",
                )
            )
            parts.append(
                f"<li>{html.escape(c.policy)}: the smallest difference this sample can detect is "
                f"{_fmt(c.mde)} per impression (80% power); detecting a "
                f"{c.target_lift:.0%} lift needs about {_fmt(c.rounds_needed, ',.0f')} "
                f"{unit} ({this}: {c.n:,}).</li>"
            )
        parts.append("</ul>")
    for name, fig in figures.items():
        parts.append(f"<h2>{html.escape(name)}</h2>{_img(fig)}")
    if groups is not None and groups.height:
        parts.append("<h2>Who gains, who loses</h2>")
        if group_note:
            parts.append(f"<p class='note'>{html.escape(group_note)}</p>")
        for p in focus:
            if p in set(groups["policy"].to_list()):
                parts.append(f"<h3>{html.escape(p)}</h3>{group_table(groups, p)}")
    parts.append(
        "<h2>How to read this</h2><ul class='note'>"
        + "".join(f"<li>{html.escape(n)}</li>" for n in method_notes)
        + "</ul>"
    )
    parts.append("</body></html>")
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(parts), encoding="utf-8")
    tmp.replace(path)
    return path
