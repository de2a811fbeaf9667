"""``index.html`` of a batch: one row per finished pair, sortable by similarity, verdict, max Δ.

A self-contained page (inline script, no network), rebuilt from the manifest after every run.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from jinja2 import Environment

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>facexplain batch: {{ n }} pairs</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5rem}table{border-collapse:collapse}
th,td{padding:.3rem .6rem;border-bottom:1px solid #ddd;text-align:left}
th{cursor:pointer;background:#f4f4f4}th:hover{background:#e8e8e8}
td.num{text-align:right;font-variant-numeric:tabular-nums}img{height:64px}
.failed{color:#a00}.same{color:#060}.different{color:#036}
</style></head><body>
<h1>Batch: {{ n }} pairs</h1>
<p>{{ done }} explained, {{ failed }} failed; backbone {{ backbone }}. Click a column to sort.</p>
<table id="t"><thead><tr>
<th data-k="s">pair</th><th>faces</th><th data-k="n">similarity</th><th data-k="s">verdict</th>
<th data-k="n">confidence</th><th data-k="n">max &Delta;</th><th data-k="n">seconds</th>
<th data-k="s">photos</th></tr></thead><tbody>
{% for r in rows %}<tr class="{{ r.cls }}">
<td>{% if r.folder %}<a href="{{ r.folder }}/report.html">{{ r.id }}</a>
{%- else %}{{ r.id }}{% endif %}</td>
<td>{% if r.folder %}<img src="{{ r.folder }}/faces.png" alt="">{% endif %}</td>
<td class="num" data-v="{{ r.sim_v }}">{{ r.sim }}</td><td>{{ r.verdict }}</td>
<td class="num" data-v="{{ r.conf_v }}">{{ r.conf }}</td>
<td class="num" data-v="{{ r.delta_v }}">{{ r.delta }}</td>
<td class="num" data-v="{{ r.sec }}">{{ r.sec }}</td><td>{{ r.photos }}</td></tr>
{% endfor %}</tbody></table>
<script>
document.querySelectorAll('#t th[data-k]').forEach(function(th, _){
  th.addEventListener('click', function(){
    var idx = Array.prototype.indexOf.call(th.parentNode.children, th);
    var body = document.querySelector('#t tbody'), rows = Array.from(body.rows);
    var dir = th.dataset.dir === 'asc' ? -1 : 1; th.dataset.dir = dir === 1 ? 'asc' : 'desc';
    rows.sort(function(a, b){
      var x = a.cells[idx], y = b.cells[idx];
      if (th.dataset.k === 'n') {
        return dir * (parseFloat(x.dataset.v || 'NaN') - parseFloat(y.dataset.v || 'NaN') || 0);
      }
      return dir * x.textContent.localeCompare(y.textContent);
    });
    rows.forEach(function(r){ body.appendChild(r); });
  });
});
</script></body></html>
"""


def _num(v: Any, fmt: str) -> tuple[str, str]:
    return ("", "") if v is None else (format(float(v), fmt), repr(float(v)))


def _row(r: dict[str, Any]) -> dict[str, Any]:
    done = r.get("status") == "done"
    sim, sim_v = _num(r.get("similarity"), ".4f")
    conf, conf_v = _num(r.get("confidence"), ".1%")
    delta, delta_v = _num(r.get("max_delta"), ".4f")
    seconds = r.get("seconds")
    sec = seconds.get("total") if isinstance(seconds, dict) else seconds
    return {"id": r["id"], "folder": r.get("folder") if done else None,
            "cls": str(r.get("answer", "")).replace(" ", "-") if done else "failed",
            "verdict": r.get("answer") if done else f"failed: {r.get('reason', '')}",
            "sim": sim, "sim_v": sim_v, "conf": conf, "conf_v": conf_v, "delta": delta,
            "delta_v": delta_v, "sec": sec if sec is not None else "",
            "photos": f"{Path(str(r['a'])).name} / {Path(str(r['b'])).name}"}


def write_gallery(out: Path, rows: list[dict[str, Any]], backbone: str) -> Path:
    """Write ``out/index.html`` for ``rows`` (manifest rows, in pair order)."""
    env = Environment(autoescape=True)
    page = env.from_string(_PAGE).render(
        n=len(rows), done=sum(r.get("status") == "done" for r in rows),
        failed=sum(r.get("status") != "done" for r in rows), backbone=html.escape(backbone),
        rows=[_row(r) for r in sorted(rows, key=lambda r: str(r["id"]))])
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    (out / "summary.json").write_text(json.dumps(
        {"pairs": len(rows), "done": sum(r.get("status") == "done" for r in rows),
         "backbone": backbone}, indent=2) + "\n", encoding="utf-8")
    return path
