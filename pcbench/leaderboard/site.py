"""A static HTML site of every leaderboard table: ``pcbench leaderboard site leaderboard/ --out site/``.

Every folder under the root that holds result records (``records/*.json``) is read and tabled as
``leaderboard build`` does (the comparability guard, the published rows of real data sets); the
site has an index of all benchmark tables (jets and showers) with their provenance, one page per
table, sortable by any column (a few lines of inline JavaScript: no CDN, it opens from disk
offline), and each computed row links to that model's HTML report and figures, copied into the
site.  Pages are written to a temporary folder and moved into place whole.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import tempfile
from pathlib import Path

from ..errors import FormatError, PcbenchError
from .published import published_rows
from .store import read_records
from ..evaluate import safe_name
from .tables import Layout, build_tables, layout, table_stem

__all__ = ["build_site"]

_STYLE = """body{font-family:sans-serif;margin:2em;max-width:110em}table{border-collapse:collapse}
td,th{border:1px solid #bbb;padding:.25em .5em;text-align:right}td:first-child,th:first-child{text-align:left}
th{cursor:pointer;background:#eee}tr.truth td{background:#f4f8ff}tr.published td{color:#555;font-style:italic}
p.foot{font-size:.9em;color:#333}.param{color:#a00;font-weight:bold}"""

# Sorts a table by the clicked column: numbers by value (the text before "±", "< b" as b), text
# otherwise; a second click reverses.  The truth row stays first.
_SCRIPT = """function sortBy(th){const t=th.closest('table'),i=[...th.parentNode.children].indexOf(th),
b=t.tBodies[0],rows=[...b.rows].filter(r=>!r.classList.contains('truth')),up=th.dataset.up!=='1';
const key=r=>{const s=r.cells[i].textContent.replace('<','').split('±')[0].trim(),v=parseFloat(s);
return isNaN(v)?s:v};rows.sort((x,y)=>{const a=key(x),c=key(y);const o=(typeof a==='number'&&typeof c==='number')
?a-c:String(a).localeCompare(String(c));return up?o:-o});th.dataset.up=up?'1':'0';rows.forEach(r=>b.appendChild(r))}"""


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{html.escape(title)}</title>\n"
            f"<style>{_STYLE}</style>\n<script>{_SCRIPT}</script>\n</head>\n<body>\n{body}\n</body>\n</html>\n")


def _inline(text: str) -> str:
    """A footer paragraph (Markdown-ish) as HTML: escaped, ``**bold**`` and ```code``` kept."""
    out = html.escape(text, quote=False)
    out = re.sub(r"\*\*(.+?)\*\*", r'<strong class="param">\1</strong>', out)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", out)


def _table_html(lay: Layout, reports: dict[str, str]) -> str:
    head = "".join(f'<th onclick="sortBy(this)">{html.escape(h)}</th>' for h in lay.header)
    rows = []
    for model, kind, cells, flags in lay.rows:
        name = html.escape(model)
        if model in reports:
            name = f'<a href="{html.escape(reports[model])}">{name}</a>'
        tds = "".join(f"<td>{'<strong>' if b else ''}{html.escape(c)}{'</strong>' if b else ''}</td>"
                      for c, b in zip(cells, flags))
        rows.append(f'<tr class="{kind}"><td>{name}</td>{tds}</tr>')
    foot = "\n".join(f'<p class="foot">{_inline(p)}</p>' for p in lay.footer)
    models = "".join(f"<li>{_inline(m.removeprefix('- '))}</li>" for m in lay.models)
    return (f"<h1>{html.escape(lay.title)}</h1>\n<p><a href=\"../index.html\">all tables</a></p>\n"
            f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>\n"
            f"{foot}\n<ul>{models}</ul>")


def _copy_reports(records_dir: Path, dest: Path, models: list[str]) -> dict[str, str]:
    """Copy each model's ``<model>.html`` and ``<model>_plots/`` into ``dest``; {model: link}."""
    links = {}
    for model in models:
        stem = safe_name(model)  # as evaluate names a record's report
        page = records_dir / f"{stem}.html"
        if not page.exists():
            continue
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(page, dest / page.name)
        plots = records_dir / f"{stem}_plots"
        if plots.is_dir():
            shutil.copytree(plots, dest / plots.name, dirs_exist_ok=True)
        links[model] = f"reports/{page.name}"
    return links


def build_site(root: str | os.PathLike[str], out: str | os.PathLike[str]) -> list[Path]:
    """Write the site of every table under ``root`` into ``out``; returns the pages written."""
    root, out = Path(root), Path(out)
    folders = sorted({p.parent.parent for p in root.glob("**/records/*.json")})
    if not folders:
        raise PcbenchError(f"{root}: no leaderboard folders (with records/*.json) under it")
    published = published_rows()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".site-", dir=out.parent))
    try:
        entries, pages = [], []
        for folder in folders:
            rel = folder.relative_to(root).as_posix()
            try:
                tables = build_tables(read_records([folder / "records"]), published)
            except FormatError:  # records of a benchmark script, not of `pcbench evaluate`: its own table.md
                if (folder / "table.md").exists():
                    page = tmp / rel / "table.html"
                    page.parent.mkdir(parents=True, exist_ok=True)
                    text = (folder / "table.md").read_text(encoding="utf-8")
                    depth = "../" * len(Path(rel).parts)
                    page.write_text(_page(rel, f'<p><a href="{depth}index.html">all tables</a></p>\n<pre>'
                                          f"{html.escape(text)}</pre>"), encoding="utf-8")
                    pages.append(out / rel / page.name)
                    entries.append(f'<tr><td><a href="{html.escape(rel)}/table.html">{html.escape(rel)}</a></td>'
                                   "<td>jets</td><td>" + html.escape(rel) + "</td><td>-</td><td>a benchmark's own "
                                   "table (its records are not evaluation records)</td></tr>")
                continue
            for table in tables:
                stem = table_stem(table)
                sub = tmp / rel
                links = {m: f"{stem}/{link}" for m, link in
                         _copy_reports(folder / "records", sub / stem / "reports", [r.model for r in table.records]).items()}
                page = sub / f"{stem}.html"
                page.parent.mkdir(parents=True, exist_ok=True)
                depth = "../" * (len(Path(rel).parts))
                lay = layout(table)
                body = _table_html(lay, links).replace('href="../index.html"', f'href="{depth}index.html"')
                page.write_text(_page(table.benchmark, body), encoding="utf-8")
                pages.append(out / rel / page.name)
                provenance = next((p for p in lay.footer if p.startswith("Provenance")), "")
                kind = "jets" if table.records[0].kind == "jets" else "showers"
                entries.append(f'<tr><td><a href="{html.escape(rel)}/{html.escape(page.name)}">'
                               f"{html.escape(table.benchmark)}</a></td><td>{kind}</td><td>{html.escape(rel)}</td>"
                               f"<td>{len(table.records)}</td><td>{_inline(provenance)}</td></tr>")
        index = ("<h1>pcbench leaderboards</h1>\n<p>Every table under <code>" + html.escape(str(root)) + "</code>; "
                 "click a column header to sort.</p>\n<table>\n<thead><tr>"
                 + "".join(f'<th onclick="sortBy(this)">{h}</th>' for h in ("table", "kind", "folder", "models", "provenance"))
                 + "</tr></thead>\n<tbody>\n" + "\n".join(entries) + "\n</tbody>\n</table>")
        (tmp / "index.html").write_text(_page("pcbench leaderboards", index), encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [out / "index.html", *pages]
