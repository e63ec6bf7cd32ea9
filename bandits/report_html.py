"""A self-contained HTML report of a comparison, for readers who do not read code.

The page is the Jinja2 template ``bandits/templates/report.html.j2`` (autoescaped); this
module turns a :class:`~bandits.experiment.ComparisonResult` into the template's values —
formatted table cells, sentences, the figures as base64 PNG data — so the single file can
be opened from the MLflow UI's artifact view, attached to an email or archived.
"""

from __future__ import annotations

import base64
import functools
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
from matplotlib.figure import Figure

from bandits.compare import INCONCLUSIVE, UNSUPPORTED, GuardrailCheck, PolicyComparison, percent

if TYPE_CHECKING:
    import jinja2

    from bandits.experiment.results import ComparisonResult

TEMPLATE = "report.html.j2"
#: a table cell: its text and its CSS class (None: plain)
Cell = tuple[str, str | None]

CSS = """
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


@functools.cache
def _environment() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,  # a value the template names must be given
    )


def figure_png(fig: Figure, dpi: int = 110) -> bytes:
    """``fig`` rendered as PNG bytes (render once, then embed and upload the same bytes)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _fmt(x: float | None, spec: str = ".4f") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return format(x, spec)


def _plain(*texts: str) -> list[Cell]:
    return [(t, None) for t in texts]


def _interval(c: PolicyComparison) -> str:
    return f"[{_fmt(c.ci_low, '+.4f')}, {_fmt(c.ci_high, '+.4f')}] ({c.ci_level:.1%})"


def comparison_rows(
    comparisons: Sequence[PolicyComparison], has_truth: bool
) -> tuple[list[str], list[list[Cell]]]:
    """Header and rows of the main table: the baseline's own value and cost first, then
    one row per comparison (every comparison is against the same baseline)."""
    head = ["policy", "reward / impression", "vs baseline", "CI (level)", "relative"]
    head += ["exact Δ (simulator)"] if has_truth else []
    head += ["verdict", "evidence", "Holm p", "unsubscribes / impr.", "Δ unsubscribes"]
    rows = []
    if comparisons:
        c = comparisons[0]
        blanks = ["–"] * (len(head) - 4)
        rows.append(
            _plain(f"{c.baseline} (baseline)", _fmt(c.baseline_value), *blanks)
            + _plain(_fmt(c.baseline_cost, ".4f"), "–")
        )
    for c in comparisons:
        cells = _plain(c.policy, _fmt(c.value), _fmt(c.diff, "+.4f"), _interval(c))
        cells += _plain(_fmt(c.relative_lift, "+.1%"))
        cells += _plain(_fmt(c.true_diff, "+.4f")) if has_truth else []
        cells.append((c.verdict, c.verdict))
        cells += _plain(c.evidence, _fmt(c.p_adjusted, ".2g"), _fmt(c.cost, ".4f"))
        cells += _plain(_fmt(c.cost_diff, "+.4f"))
        rows.append(cells)
    return head, rows


def pair_rows(pairs: Sequence[PolicyComparison]) -> list[list[Cell]]:
    """The rung-vs-rung comparisons (same family as the baseline comparisons)."""
    return [
        _plain(f"{c.policy} vs {c.baseline}", _fmt(c.diff, "+.4f"), _interval(c))
        + _plain(_fmt(c.relative_lift, "+.1%"))
        + [(c.verdict, c.verdict)]
        + _plain(_fmt(c.p_adjusted, ".2g"))
        for c in pairs
    ]


def group_rows(groups: pl.DataFrame, policy: str) -> list[list[Cell]]:
    """One rung's who-gains rows: group, impressions, Δ, interval, relative lift, verdict."""
    rows = []
    for r in groups.filter(pl.col("policy") == policy).iter_rows(named=True):
        rows.append(
            [
                *_plain(
                    f"{r['dimension']} = {r['group']}",
                    f"{r['n']:,}",
                    _fmt(r["diff"], "+.4f"),
                    f"[{_fmt(r['ci_low'], '+.4f')}, {_fmt(r['ci_high'], '+.4f')}]",
                    _fmt(r["relative_lift"], "+.1%"),
                ),
                (r["verdict"], r["verdict"].split()[0]),
            ]
        )
    return rows


def guardrail_rows(guardrails: Mapping[str, GuardrailCheck]) -> list[list[Cell]]:
    """Each rung's unsubscribes per 1,000 impressions against the budget."""
    rows = []
    for g in guardrails.values():
        extra = f"{g.extra[0]:+.2f} [{g.extra[1]:+.2f}, {g.extra[2]:+.2f}]" if g.extra else "–"
        rate = f"{g.rate[0]:.2f} [{g.rate[1]:.2f}, {g.rate[2]:.2f}]"
        rows.append(_plain(g.rung, rate, extra, f"{g.level:.1%}", g.status))
    return rows


def diagnostic_rows(comparisons: Sequence[PolicyComparison]) -> list[list[Cell]]:
    """Over replications: the spread of the exact Δ across runs next to what one run's batch
    means claim, and the mean realised Δ."""
    rows = []
    for c in comparisons:
        if not c.replications or c.within_stderr is None:
            continue
        spread = c.stderr * math.sqrt(c.replications)
        ratio = spread / c.within_stderr if c.within_stderr > 0 else math.nan
        rows.append(
            _plain(
                f"{c.policy} vs {c.baseline}",
                _fmt(c.diff, "+.4f"),
                _fmt(c.observed_diff, "+.4f"),
                _fmt(spread),
                _fmt(c.within_stderr),
                _fmt(ratio, ".1f"),
            )
        )
    return rows


def _unclear(result: ComparisonResult) -> list[str]:
    """What a conclusive answer would take, for every inconclusive comparison."""
    items = []
    for c in result.comparisons:
        if c.verdict != INCONCLUSIVE:
            continue
        if c.unit == "replications":
            unit, this = "replications of the campaign", "this comparison"
        elif c.unit == "logged rows":
            unit, this = "logged rows", "this log"
        else:
            unit, this = "impressions", "this run"
        items.append(
            f"{c.policy}: the smallest difference this sample can detect is {_fmt(c.mde)} per "
            f"impression ({percent(result.power)} power, alpha = {result.alpha:g}); detecting a "
            f"{c.target_lift:.0%} lift needs about {_fmt(c.rounds_needed, ',.0f')} {unit} "
            f"({this}: {c.n:,})."
        )
    return items


def render_report(
    result: ComparisonResult,
    figures: Mapping[str, Figure | bytes],
    *,
    run_id: str | None = None,
) -> str:
    """The report of ``result`` as one HTML page. ``figures``: title → a matplotlib Figure
    or its PNG bytes (:func:`figure_png`), embedded in that order."""
    comps = result.comparisons
    head, rows = comparison_rows(comps, any(c.true_diff is not None for c in comps))
    shown = set(result.groups["policy"].to_list()) if result.groups.height else set()
    pngs = [
        (name, base64.b64encode(fig if isinstance(fig, bytes) else figure_png(fig)).decode())
        for name, fig in figures.items()
    ]
    return (
        _environment()
        .get_template(TEMPLATE)
        .render(
            css=CSS,
            title=result.title,
            subtitle=result.subtitle(run_id),
            estimand=result.estimand,
            headline=result.headline,
            notes=result.notes,
            comparison_head=head,
            comparison_rows=rows,
            sentences=[c.sentence() for c in comps],
            pair_head=[
                "pair",
                "Δ reward / impression",
                "CI (level)",
                "relative",
                "verdict",
                "Holm p",
            ],
            pair_rows=pair_rows(result.pairs),
            guardrail_budget=(
                result.guardrail.describe(result.baseline) if result.guardrail else "none"
            ),
            guardrail_head=[
                "rung",
                "unsubscribes / 1,000 (CI)",
                "vs baseline (CI)",
                "level",
                "budget",
            ],
            guardrail_rows=guardrail_rows(result.guardrails),
            diagnostic_head=[
                "pair",
                "exact Δ (mean over runs)",
                "realised Δ (mean)",
                "sd of exact Δ across runs",
                "one run's batch-means se",
                "ratio",
            ],
            diagnostic_rows=diagnostic_rows([*comps, *result.pairs]),
            unsupported=[c.reason for c in comps if c.verdict == UNSUPPORTED],
            unclear=_unclear(result),
            figures=pngs,
            group_note=result.group_note,
            group_head=["group", "impressions", "Δ reward", "interval", "relative", "verdict"],
            group_tables=[(p, group_rows(result.groups, p)) for p in result.focus if p in shown],
            method_notes=result.method_notes,
        )
    )


def write_report(
    path: str | Path,
    result: ComparisonResult,
    figures: Mapping[str, Figure | bytes],
    *,
    run_id: str | None = None,
) -> Path:
    """:func:`render_report` written to ``path`` atomically; returns the path."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(render_report(result, figures, run_id=run_id), encoding="utf-8")
    tmp.replace(path)
    return path
