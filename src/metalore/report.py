"""One self-contained HTML page about a results folder (``metalore report RESULTS_DIR``).

:func:`build_report` gathers what a ``metalore run``/``evaluate``/``grid``/``train`` folder holds:
the tables (``episodes.csv``, ``summary.csv``, ``grid.csv``, ``evaluations.csv``) with formatted
numbers, the plots of :mod:`metalore.plots` (with the notes of those it could not draw), the
scenario (``scenario.yaml``) and the run record (``run.json`` / ``metadata.json``: command,
seeds, package versions). The page needs no network and no other file: the PNGs are embedded
as base64 ``data:`` URIs and the CSS is inline, so it can be mailed or archived as it is.
Plots need matplotlib (``pip install "metalore[render]"``); without it the page has the tables
only and says so.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import math
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from metalore import __version__
from metalore.io import write_text
from metalore.plots import PARETO_OBJECTIVES, make_plots, pareto_front

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["add_report_arguments", "build_report", "format_number", "markdown_html", "run_report"]

MAX_TABLE_ROWS = 500
HEADLINE = ("reward", "aori_mean", "aosi_mean", "late_fraction", "ue_throughput_mbps", "sensor_throughput_mbps")
TABLES = (
    ("episodes.csv", "Episodes", "one row per episode (per policy and seed for evaluate)"),
    ("grid.csv", "Static splits (grid)", "mean over the seeds of every metric per split; Pareto-front rows in bold"),
    ("evaluations.csv", "Training evaluations", "the deterministic agent on the held-out seeds during training"),
)
RECORDS = ("run.json", "metadata.json", "compare.json")

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1200px;
       padding: 0 1rem; color: #1d2330; line-height: 1.45; }
h1 { border-bottom: 3px solid #3b6fb6; padding-bottom: .3rem; }
h2 { margin-top: 2.2rem; color: #23466f; }
.meta { color: #556; }
.scroll { overflow-x: auto; max-height: 36rem; border: 1px solid #d5dbe5; }
table { border-collapse: collapse; font-size: .85rem; }
th, td { padding: .25rem .6rem; border-bottom: 1px solid #e3e7ee; white-space: nowrap; }
th { background: #eef2f8; position: sticky; top: 0; text-align: right; }
td { text-align: right; font-variant-numeric: tabular-nums; }
td.text, th.text { text-align: left; }
tr.front td { font-weight: bold; background: #fff4e5; }
figure { margin: 1.2rem 0; }
figure img { max-width: 100%; border: 1px solid #d5dbe5; }
figcaption { color: #556; font-size: .9rem; }
pre { background: #f5f7fa; border: 1px solid #d5dbe5; padding: .8rem; overflow-x: auto; font-size: .8rem; }
ul.notes { color: #7a5a00; }
"""


def format_number(value: Any) -> str:
    """A table cell: integers as such, other numbers to 4 significant digits, NaN as ``–``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
    if isinstance(value, float) and math.isnan(value):
        return "–"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


def _cell(value: Any) -> str:
    text = format_number(value.item() if hasattr(value, "item") else value)
    numeric = isinstance(value, int | float) or hasattr(value, "item")
    return f"<td{'' if numeric else ' class=text'}>{html.escape(text)}</td>"


def html_table(frame: pd.DataFrame, bold: Any = None) -> str:
    """``frame`` as an HTML table (first :data:`MAX_TABLE_ROWS` rows); rows where ``bold`` is true marked."""
    shown = frame.head(MAX_TABLE_ROWS)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    rows = []
    for i, row in enumerate(shown.itertuples(index=False)):
        marked = bold is not None and bool(bold[i])
        rows.append(f"<tr{' class=front' if marked else ''}>{''.join(_cell(v) for v in row)}</tr>")
    more = f"<p class=meta>{len(frame) - len(shown)} more rows not shown.</p>" if len(frame) > len(shown) else ""
    return f"<div class=scroll><table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>{more}"


def _summary_table(summary: pd.DataFrame) -> str:
    """One row per policy: ``mean ± 95% half-width`` of the headline metrics."""
    import pandas as pd

    metrics = [m for m in HEADLINE if m in set(summary["metric"])]
    rows = []
    for policy, stats in summary.groupby("policy", sort=False):
        by_metric = stats.set_index("metric")
        row: dict[str, Any] = {"policy": policy, "episodes": int(by_metric["n"].max())}
        for metric in metrics:
            mean, half = by_metric.loc[metric, "mean"], by_metric.loc[metric, "half_width"]
            row[metric] = format_number(float(mean)) + ("" if math.isnan(half) else f" ± {format_number(float(half))}")
        rows.append(row)
    return html_table(pd.DataFrame(rows))


def _read_csv(path: Path) -> pd.DataFrame | None:
    import pandas as pd

    try:
        return pd.read_csv(path) if path.is_file() else None
    except (OSError, ValueError):
        return None


def _plots_section(results_dir: Path) -> tuple[str, bool]:
    """The plots as ``<figure>``s with embedded PNGs, and whether any was drawn."""
    try:
        with tempfile.TemporaryDirectory(prefix="metalore-report-") as tmp:
            made = make_plots(results_dir, tmp)
            figures = [_figure_html(path) for path in made.paths]
    except ImportError as exc:
        return f"<p class=meta>No plots: {html.escape(str(exc))}</p>", False
    except ValueError:
        return "<p class=meta>No plots: the folder holds none of the files a plot needs.</p>", False
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in made.skipped)
    return "".join(figures) + (f"<p>Not drawn:</p><ul class=notes>{notes}</ul>" if notes else ""), bool(figures)


def _inline(text: str) -> str:
    """Markdown inline markup of ``results.md``: only ``code`` spans."""
    parts = html.escape(text, quote=False).split("`")
    return "".join(f"<code>{part}</code>" if i % 2 else part for i, part in enumerate(parts))


def markdown_html(text: str) -> str:
    """The Markdown that ``metalore compare`` writes (headings, paragraphs, pipe tables, code spans) as HTML."""
    blocks: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if not line:
            i += 1
        elif line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")) + 1, 4)  # the page's h1 is the report's own title
            blocks.append(f"<h{level}>{_inline(line.lstrip('#').strip())}</h{level}>")
            i += 1
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                if not all(set(c) <= set("-: ") for c in cells):  # skip the |---| separator
                    rows.append(cells)
                i += 1
            head = "".join(f"<th class=text>{_inline(c)}</th>" for c in rows[0])
            body = "".join(
                "<tr>" + "".join(f"<td class=text>{_inline(c)}</td>" for c in row) + "</tr>" for row in rows[1:]
            )
            blocks.append(f"<div class=scroll><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")
        else:
            paragraph = []
            while i < len(lines) and lines[i].strip() and not lines[i].strip().startswith(("#", "|")):
                paragraph.append(lines[i].strip())
                i += 1
            blocks.append(f"<p>{_inline(' '.join(paragraph))}</p>")
    return "".join(blocks)


def _figure_html(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<figure><img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(path.name)}</figcaption></figure>"
    )


def build_report(results_dir: str | Path, out_path: str | Path | None = None) -> Path:
    """Write the HTML report of ``results_dir`` to ``out_path`` (default ``results_dir/report.html``), atomically.

    Returns:
        The path written.

    Raises:
        ValueError: ``results_dir`` is not a folder, or holds no table, job log or run record.
    """
    root = Path(results_dir)
    if not root.is_dir():
        raise ValueError(f"results folder {str(root)!r} does not exist: pass the --out folder of a metalore command")
    out = Path(out_path) if out_path is not None else root / "report.html"
    sections: list[str] = []
    found_data = False

    results = root / "results.md"  # metalore compare: its tables and its own figures come first
    if results.is_file():
        found_data = True
        sections.append(markdown_html(results.read_text(encoding="utf-8")))
        figures = sorted(root.glob("*.png"))
        if figures:
            sections.append("<h2>Figures of the comparison</h2>" + "".join(_figure_html(p) for p in figures))
    summary = _read_csv(root / "summary.csv")
    if summary is not None and len(summary):
        found_data = True
        sections.append(
            "<h2>Policy comparison (summary.csv)</h2><p class=meta>mean ± 95% confidence half-width "
            f"(Student t over episodes)</p>{_summary_table(summary)}"
            f"<details><summary>every metric</summary>{html_table(summary)}</details>"
        )
    for name, title, caption in TABLES:
        table = _read_csv(root / name)
        if table is None or not len(table):
            continue
        found_data = True
        bold = None
        if name == "grid.csv" and all(c in table.columns for c, _ in PARETO_OBJECTIVES):
            bold = pareto_front(table)
        sections.append(f"<h2>{title} ({name})</h2><p class=meta>{caption}</p>{html_table(table, bold)}")

    plots, drew = _plots_section(root)
    found_data = found_data or drew
    sections.append(f"<h2>Plots</h2>{plots}")

    scenario = root / "scenario.yaml"
    if scenario.is_file():
        sections.append(
            f"<h2>Scenario (scenario.yaml)</h2><pre>{html.escape(scenario.read_text('utf-8'), quote=False)}</pre>"
        )
    for name in RECORDS:
        path = root / name
        if path.is_file():
            found_data = True
            sections.append(f"<h2>Run record ({name})</h2>{_record(path)}")
    if not found_data:
        raise ValueError(
            f"results folder {str(root)!r} holds nothing to report: expected episodes.csv, summary.csv, grid.csv, "
            "evaluations.csv, job_log_*.csv, run.json or metadata.json (from metalore run/evaluate/grid/train)"
        )
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>MetaLore report: {html.escape(root.resolve().name)}</title><style>{CSS}</style></head><body>"
        f"<h1>MetaLore results: {html.escape(root.resolve().name)}</h1>"
        f"<p class=meta>folder {html.escape(str(root.resolve()))}; report by metalore {__version__} at {created}</p>"
        + "".join(sections)
        + "</body></html>\n"
    )
    return write_text(out, page)


def _record(path: Path) -> str:
    """The package versions as a table (when present) and the whole JSON record."""
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except ValueError:
        return f"<pre>{html.escape(text, quote=False)}</pre>"
    versions = data.get("versions") if isinstance(data, dict) else None
    table = ""
    if isinstance(versions, dict):
        rows = "".join(
            f"<tr><td class=text>{html.escape(str(k))}</td><td class=text>{html.escape(str(v))}</td></tr>"
            for k, v in versions.items()
        )
        table = f"<table><thead><tr><th class=text>package</th><th class=text>version</th></tr></thead>{rows}</table>"
    return f"{table}<pre>{html.escape(json.dumps(data, indent=2), quote=False)}</pre>"


# --------------------------------------------------------------------------- command line
def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``metalore report RESULTS_DIR [--out FILE]``."""
    parser.add_argument(
        "results_dir", metavar="RESULTS_DIR", help="a folder written by metalore run/evaluate/grid/train"
    )
    parser.add_argument("--out", metavar="FILE", help="the HTML file to write (default: RESULTS_DIR/report.html)")


def run_report(args: argparse.Namespace) -> int:
    """``metalore report``: write the HTML report and print its path."""
    print(build_report(args.results_dir, args.out))
    return 0
