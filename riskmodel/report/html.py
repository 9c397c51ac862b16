"""Self-contained HTML reports: PNG figures embedded as base64, tables, settings.

A report is a title plus a list of blocks (headings, paragraphs, preformatted text,
tables, matplotlib figures).  Nothing is linked from outside the file: no scripts, no
style sheets, no images by URL.  Files are written aside and renamed (atomic), so a crash
never leaves a half-written report in place of an old one; they get the mode a plain
``open`` gives (0644 under the usual umask), like the figures.
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from riskmodel import _atomic

if TYPE_CHECKING:  # pragma: no cover - type hints only: report never imports audit at run time
    from matplotlib.figure import Figure

    from riskmodel.audit.residual_results import ResidualAudit

__all__ = ["Block", "figure_png", "render_html", "write_audit_report", "write_html", "write_report"]

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1000px;color:#222}
h1{font-size:1.6em;border-bottom:2px solid #444}h2{font-size:1.2em;margin-top:1.6em}
pre{background:#f6f6f6;padding:.8em;overflow-x:auto;font-size:.85em}
table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:right}
th{background:#eee}img{max-width:100%;height:auto;display:block;margin:.6em 0}
.flag{color:#b00;font-weight:bold}
td.members{text-align:left;max-width:28em}details summary{cursor:pointer}
"""


@dataclass(frozen=True)
class Block:
    """One piece of a report: ``kind`` in {"h2", "p", "pre", "table", "figure", "html"}."""

    kind: str
    content: Any
    caption: str = ""


def figure_png(fig: Figure) -> bytes:
    """PNG bytes of a matplotlib figure (Agg)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if fig.canvas is None or not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _render_block(b: Block) -> str:
    if b.kind == "h2":
        return f"<h2>{html.escape(str(b.content))}</h2>"
    if b.kind == "p":
        return f"<p>{html.escape(str(b.content))}</p>"
    if b.kind == "pre":
        return f"<pre>{html.escape(str(b.content))}</pre>"
    if b.kind == "html":
        return str(b.content)
    if b.kind == "table":
        df = b.content if isinstance(b.content, pd.DataFrame) else pd.DataFrame(b.content)
        plain = isinstance(df.index, pd.RangeIndex) and df.index.name is None  # 0, 1, 2 ...: not shown
        return df.to_html(escape=True, border=0, float_format=lambda x: f"{x:.4g}", na_rep="", index=not plain)
    if b.kind == "figure":
        data = b.content if isinstance(b.content, (bytes, bytearray)) else figure_png(b.content)
        src = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        cap = f"<figcaption>{html.escape(b.caption)}</figcaption>" if b.caption else ""
        return f'<figure><img alt="{html.escape(b.caption or "figure")}" src="{src}">{cap}</figure>'
    raise ValueError(f"unknown report block kind {b.kind!r}")


def render_html(title: str, blocks: list[Block]) -> str:
    """The HTML text of a report (UTF-8, inline CSS, images as data URIs)."""
    body = "\n".join(_render_block(b) for b in blocks)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n"
        f"<body><h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n"
    )


def write_html(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (temporary sibling, fsync, rename), UTF-8, with
    the mode a plain ``open`` gives (:func:`riskmodel._atomic.write_bytes`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return _atomic.write_bytes(path, text.encode("utf-8"))


def write_report(path: str | Path, title: str, blocks: list[Block]) -> Path:
    """Render ``blocks`` under ``title`` and write the HTML file atomically."""
    return write_html(path, render_html(title, blocks))


#: Members listed in a cluster's summary line before the full list is folded away.
MEMBERS_SHOWN = 6


def _members_cell(stocks: list[str]) -> str:
    """Every member: the first few in a line, all of them in a collapsible ``<details>``."""
    names = [html.escape(s) for s in stocks]
    if len(names) <= MEMBERS_SHOWN:
        return ", ".join(names)
    head = ", ".join(names[:MEMBERS_SHOWN])
    return (f"<details><summary>{head} and {len(names) - MEMBERS_SHOWN} more</summary>"
            f"{', '.join(names)}</details>")


def _cluster_table(audit: ResidualAudit) -> str:
    """The clusters as an HTML table: one row each, numbered once, every member listed."""
    frame = _cluster_frame(audit)
    members = [_members_cell(c.stocks) for c in audit.clusters]
    text = frame.to_html(escape=True, border=0, float_format=lambda x: f"{x:.4g}", na_rep="", index=False)
    for cell in members:  # the placeholder cells, in order, become the member lists
        text = text.replace("<td>@members@</td>", f'<td class="members">{cell}</td>', 1)
    return text


def _cluster_frame(audit: ResidualAudit) -> pd.DataFrame:
    rows = []
    for j, c in enumerate(audit.clusters):
        rows.append(
            {
                "cluster": j,
                "size": c.size,
                "mean corr": c.mean_correlation,
                "held-out corr": c.held_out_correlation,
                "p-value": c.p_value,
                "bias in": c.bias_in,
                "bias out": c.bias_out,
                "random median": float(pd.Series(c.random_bias).median()) if c.random_bias.size else float("nan"),
                "flagged": "yes" if c.flagged else "no",
                "ipr": c.ipr,
                "purity": c.purity,
                "label": c.label or "",
                "most common label": c.dominant_label or "",
                "members": "@members@",
            }
        )
    frame = pd.DataFrame(rows)
    if not any(c.dominant_label is not None for c in audit.clusters):  # no labels given
        frame = frame.drop(columns=["purity", "label", "most common label"])
    return frame


def write_audit_report(audit: ResidualAudit, path: str | Path, *, title: str = "Residual audit") -> Path:
    """Self-contained HTML report of a :class:`~riskmodel.audit.residuals.ResidualAudit`."""
    from riskmodel.report import audit_figures as plots_audit

    blocks = [
        Block("p", "Groups of stocks whose residuals co-move are factors the risk model does not name; "
                   "portfolios loaded on them carry risk the model misses."),
        Block("h2", "Summary"),
        Block("pre", audit.summary()),
        Block("h2", "Spectrum"),
        Block("figure", plots_audit.plot_spectrum(audit), "Eigenvalues vs Marchenko-Pastur and null edges"),
        Block("h2", "Clusters"),
    ]
    if audit.clusters:
        blocks.append(Block("html", _cluster_table(audit)))
    else:
        blocks.append(Block("p", "No residual cluster found."))
    blocks += [
        Block("figure", plots_audit.plot_cluster_correlation(audit), "Residual correlation, ordered by cluster"),
        Block("h2", "What the miss costs"),
        Block("figure", plots_audit.plot_bias(audit), "Held-out bias: clusters vs random portfolios"),
        Block("figure", plots_audit.plot_bias_time(audit), "Rolling bias of cluster portfolios"),
        Block("h2", "Settings"),
        Block("pre", json.dumps(audit.settings, indent=2, default=str)),
    ]
    if audit.excluded:
        ex = pd.DataFrame({"stock": list(audit.excluded), "reason": list(audit.excluded.values())})
        blocks += [Block("h2", f"Excluded stocks ({len(ex)})"), Block("table", ex.head(200))]
    return write_report(path, title, blocks)
