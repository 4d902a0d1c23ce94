"""Evaluation results as a terminal table and as Markdown."""

from __future__ import annotations

from tailor.evaluation.runner import EvalReport
from tailor.tasks import get_task


def _cell(value: float, interval: list[float] | None) -> str:
    if interval is None:
        return f"{value:.4f}"
    return f"{value:.4f} [{interval[0]:.4f}, {interval[1]:.4f}]"


def _delta(comparison: dict[str, float] | None) -> str:
    if not comparison:
        return ""
    return f"{comparison['delta']:+.4f} [{comparison['low']:+.4f}, {comparison['high']:+.4f}]"


def report_rows(report: EvalReport) -> tuple[list[str], list[list[str]]]:
    """A header and one row per method: n, each metric with its 95% interval, the paired
    difference against ``none`` on the first metric, seconds per example, and the mean
    prompt length in tokens where the backend counted it."""
    names = list(report.results[0].metrics) if report.results and report.results[0].metrics else []
    first = names[0] if names else None
    header = ["method", "n", *[f"{n} (95% CI)" for n in names]]
    if first is not None:
        arrow = "higher is better" if get_task(report.task).metric(first).higher_is_better else "lower is better"
        header.append(f"Δ {first} vs none ({arrow})")
    header.append("s/example")
    tokens = any(result.prompt_tokens is not None for result in report.results)
    if tokens:  # what prefill costs: the prompt's length beside the seconds
        header.append("prompt tokens")
    rows = []
    for result in report.results:
        row = [result.method, str(result.n)]
        row += [_cell(result.metrics[n], result.ci95.get(n)) for n in names]
        if first is not None:
            row.append(_delta(result.versus_none.get(first)))
        row.append(f"{result.seconds / max(result.n, 1):.2f}")
        if tokens:
            row.append(f"{result.prompt_tokens:.0f}" if result.prompt_tokens is not None else "")
        rows.append(row)
    return header, rows


def format_table(report: EvalReport) -> str:
    """A plain-text table for the terminal."""
    header, rows = report_rows(report)
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(len(header))]
    lines = [
        f"{report.task} · split {report.split} · n={report.n} · model {report.model}",
        "  ".join(h.ljust(w) for h, w in zip(header, widths)),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def format_markdown(report: EvalReport) -> str:
    """The same table in Markdown, for docs."""
    header, rows = report_rows(report)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
