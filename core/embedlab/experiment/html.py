"""``embedlab run ... --report report.html``: one self-contained HTML page per experiment.

The page holds the results table (metrics, significance against the baseline, latency per stage,
bytes per document, build time), one per-query difference plot per pipeline against the baseline
(queries sorted by the difference on the first metric), latency-vs-quality and bytes-vs-quality
scatter plots, and the run manifest. Plots are inline SVG drawn here, styles inline, no external
file, font or script: the page opens offline in any browser. A few lines of script make the table
sortable by clicking a header and mark ``<body data-ready="1">`` once the page has initialised (a
browser test reads it).
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any, Sequence

from embedlab.experiment.runner import ExperimentResult
from embedlab.manifest import build_manifest

WIDTH, HEIGHT, MARGIN = 560, 220, 48
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#222;max-width:1200px}
table{border-collapse:collapse;font-size:14px}th,td{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right}
th{cursor:pointer;background:#f4f4f4}td:first-child,th:first-child{text-align:left}
.better{color:#0a7d32;font-weight:600}.worse{color:#b3261e;font-weight:600}
.plots{display:flex;flex-wrap:wrap;gap:16px}figure{margin:0}figcaption{font-size:13px;color:#555}
svg text{font-size:11px;fill:#333}pre{background:#f7f7f7;padding:12px;overflow:auto;font-size:12px}
"""
SCRIPT = """
document.querySelectorAll('table.results th').forEach(function(th, col){
  th.addEventListener('click', function(){
    var body = th.closest('table').tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var sign = th.dataset.order === 'asc' ? -1 : 1; th.dataset.order = sign > 0 ? 'asc' : 'desc';
    rows.sort(function(a, b){
      var x = a.cells[col].dataset.value, y = b.cells[col].dataset.value;
      var nx = parseFloat(x), ny = parseFloat(y);
      return sign * ((isNaN(nx) || isNaN(ny)) ? String(x).localeCompare(String(y)) : nx - ny);
    });
    rows.forEach(function(r){ body.appendChild(r); });
  });
});
document.body.dataset.ready = '1';
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _axis_range(values: Sequence[float]) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    low, high = min(finite), max(finite)
    if low == high:
        low, high = low - 0.5, high + 0.5
    pad = 0.08 * (high - low)
    return low - pad, high + pad


def difference_plot(differences: Sequence[float], title: str) -> str:
    """SVG bars of per-query differences, sorted: green above zero, red below."""
    values = sorted(differences, reverse=True)
    low, high = _axis_range([*values, 0.0])
    inner_w, inner_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN

    def y(v: float) -> float:
        return MARGIN + inner_h * (high - v) / (high - low)

    step = inner_w / max(len(values), 1)
    bars = []
    for i, v in enumerate(values):
        top, bottom = sorted((y(v), y(0.0)))
        colour = "#0a7d32" if v > 0 else "#b3261e" if v < 0 else "#999"
        bars.append(f'<rect class="diff" x="{MARGIN + i * step:.2f}" y="{top:.2f}" width="{max(step - 0.3, 0.3):.2f}" '
                    f'height="{max(bottom - top, 0.5):.2f}" fill="{colour}"><title>{v:+.4f}</title></rect>')
    zero = y(0.0)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img" '
            f'aria-label="{_esc(title)}"><text x="{MARGIN}" y="16">{_esc(title)}</text>'
            f'<line x1="{MARGIN}" x2="{WIDTH - MARGIN}" y1="{zero:.2f}" y2="{zero:.2f}" stroke="#555"/>'
            f'<text x="4" y="{y(high) + 4:.2f}">{high:+.2f}</text><text x="4" y="{y(low):.2f}">{low:+.2f}</text>'
            + "".join(bars) + f'<text x="{MARGIN}" y="{HEIGHT - 8}">queries, sorted by difference '
            f'({len(values)})</text></svg>')


def scatter_plot(points: Sequence[tuple[str, float, float]], x_label: str, y_label: str, log_x: bool) -> str:
    """SVG scatter of (label, x, y) with the labels written beside the points."""
    usable = [(n, x, y) for n, x, y in points if math.isfinite(x) and math.isfinite(y) and (x > 0 or not log_x)]
    xs = [math.log10(x) if log_x else x for _, x, _ in usable]
    x_low, x_high = _axis_range(xs)
    y_low, y_high = _axis_range([y for _, _, y in usable])
    inner_w, inner_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN
    marks = []
    for (name, x, yv), xv in zip(usable, xs):
        px = MARGIN + inner_w * (xv - x_low) / (x_high - x_low)
        py = MARGIN + inner_h * (y_high - yv) / (y_high - y_low)
        marks.append(f'<circle class="point" cx="{px:.2f}" cy="{py:.2f}" r="4" fill="#1f5fbf">'
                     f'<title>{_esc(name)}: {x:.4g}, {yv:.4f}</title></circle>'
                     f'<text x="{px + 6:.2f}" y="{py - 6:.2f}">{_esc(name)}</text>')
    fmt = (lambda v: f"{10 ** v:.3g}") if log_x else (lambda v: f"{v:.3g}")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img" '
            f'aria-label="{_esc(y_label)} vs {_esc(x_label)}">'
            f'<rect x="{MARGIN}" y="{MARGIN}" width="{inner_w}" height="{inner_h}" fill="none" stroke="#ccc"/>'
            + "".join(marks)
            + f'<text x="{MARGIN}" y="{HEIGHT - 8}">{_esc(x_label)}{" (log scale)" if log_x else ""}: '
              f'{fmt(x_low)} .. {fmt(x_high)}</text>'
              f'<text x="4" y="16">{_esc(y_label)}: {y_low:.3f} .. {y_high:.3f}</text></svg>')


def _table(result: ExperimentResult) -> str:
    first, baseline = result.metrics[0], result.config.baseline
    head = ["pipeline", *result.metrics]
    if baseline:
        head += [f"p(t) {first}", f"p(W) {first}", "improved", "degraded"]
    head += ["ms/query", "ms/query by stage", "bytes/doc", "build s"]
    rows = []
    for o in result.outcomes:
        cells = [(o.name + (" (baseline)" if o.name == baseline else ""), o.name)]
        for metric in result.metrics:
            value = o.evaluation.aggregates[metric]
            c = result.comparison(o.name, metric)
            mark = ""
            if c is not None and c.p_ttest_holm < 0.05:
                mark = "better" if c.mean_difference > 0 else "worse"
            cells.append((f'<span class="{mark}">{value:.4f}</span>' if mark else f"{value:.4f}", value))
        if baseline:
            c = result.comparison(o.name, first)
            cells += ([(f"{c.p_ttest_holm:.3g}", c.p_ttest_holm), (f"{c.p_wilcoxon_holm:.3g}", c.p_wilcoxon_holm),
                       (c.improved, c.improved), (c.degraded, c.degraded)] if c else [("", "")] * 4)
        t = o.timings
        stages = " + ".join(f"{label} {ms:.2f}" for label, ms in t.stage_latencies_ms().items())
        cells += [(f"{t.latency_ms:.2f}", t.latency_ms), (stages, t.latency_ms),
                  (f"{o.bytes_per_document:,.0f}", o.bytes_per_document), (f"{t.build_s:.1f}", t.build_s)]
        rows.append("<tr>" + "".join(
            f'<td data-value="{_esc(v)}">{c if str(c).startswith("<span") else _esc(c)}</td>' for c, v in cells)
            + "</tr>")
    header = "".join(f"<th>{_esc(h)}</th>" for h in head)
    return f'<table class="results"><thead><tr>{header}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def render(result: ExperimentResult, manifest: dict[str, Any] | None = None) -> str:
    """The HTML page of one experiment."""
    first, baseline = result.metrics[0], result.config.baseline
    manifest = manifest if manifest is not None else build_manifest(result)
    split = result.split
    title = (f"{result.dataset.name} / {split.name}: {len(result.dataset.corpus):,} documents, "
             f"{len(split.queries):,} queries")
    trained = result.config.train_split
    parts = [f"<h1>embedlab experiment</h1><p>{_esc(title)}"
             + (f"; learning components trained on {_esc(trained)}" if trained else "")
             + "</p>", "<h2>Results</h2>", _table(result)]
    if baseline:
        parts.append(f"<p>Coloured values differ significantly from {_esc(baseline)} (paired t-test, Holm-corrected "
                     "across pipelines, p &lt; 0.05). Click a header to sort.</p>")
        base = next(o for o in result.outcomes if o.name == baseline)
        reference = dict(zip(base.evaluation.query_ids, base.evaluation.per_query[first]))
        plots = []
        for o in result.outcomes:
            if o.name == baseline:
                continue
            ours = dict(zip(o.evaluation.query_ids, o.evaluation.per_query[first]))
            diffs = [float(ours[q]) - float(reference[q]) for q in reference if q in ours]
            plots.append(f"<figure>{difference_plot(diffs, f'{o.name} - {baseline}, {first}')}"
                         f"<figcaption>{_esc(o.name)}: per-query {_esc(first)} minus {_esc(baseline)}'s"
                         "</figcaption></figure>")
        parts += [f"<h2>Per query against {_esc(baseline)}</h2>", f'<div class="plots">{"".join(plots)}</div>']
    points_latency = [(o.name, o.timings.latency_ms, o.evaluation.aggregates[first]) for o in result.outcomes]
    points_bytes = [(o.name, o.bytes_per_document, o.evaluation.aggregates[first]) for o in result.outcomes]
    parts += ["<h2>Trade-offs</h2>", '<div class="plots">',
              f"<figure>{scatter_plot(points_latency, 'ms/query', first, log_x=True)}"
              "<figcaption>latency vs quality</figcaption></figure>",
              f"<figure>{scatter_plot(points_bytes, 'bytes/document', first, log_x=True)}"
              "<figcaption>bytes vs quality</figcaption></figure></div>",
              "<h2>Run manifest</h2><details open><summary>manifest.json</summary>"
              f'<pre id="manifest">{_esc(json.dumps(manifest, indent=2, default=str))}</pre></details>']
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>embedlab: "
            f"{_esc(title)}</title><style>{STYLE}</style></head><body>{''.join(parts)}"
            f"<script>{SCRIPT}</script></body></html>")


def write_report(result: ExperimentResult, path: str | Path) -> Path:
    """Write the page to ``path`` atomically (temporary file + rename), with the user's umask."""
    from embedlab.experiment.report import write_text_atomically

    return write_text_atomically(path, render(result))
