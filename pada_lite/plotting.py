"""Plotly figures that draw in the offline book *and* in live notebooks: :func:`show`.

Why not ``fig.show()``? Plotly's default notebook output is the mime type ``application/vnd.plotly.v1+json``,
which Jupyter Book 1.x does not know (it warns "skipping unknown output mime type" and draws nothing), and its
HTML renderers either load plotly.js from a CDN (no figure offline) or inline all 4.8 MB of it in every figure.

:func:`show` displays one output bundle with two representations of the figure:

- ``text/html``: a ``<div class="plotly-graph-div">`` with a stable id and a short script that calls
  ``Plotly.newPlot``. It does not contain plotly.js: the book serves one copy of ``plotly.min.js`` from its own
  ``_static/vendor/`` folder (``tools/build_book.sh`` copies it from the installed ``plotly`` package) on every
  page, so the built HTML draws every figure with no network. Where no plotly.js is on the page the div says so
  instead of failing silently.
- ``application/vnd.plotly.v1+json``: the figure itself, which JupyterLab, Jupyter Notebook 7 and VS Code render
  with their plotly extension (offline too); front ends prefer it to ``text/html``. The book's build sets
  ``PADA_LITE_FIGURES=html`` (``tools/build_book.sh``), which leaves it out: myst-nb warns about every mime type
  it does not know, and the build treats warnings as errors.

In Google Colab (``google.colab`` imported), which renders neither, :func:`show` falls back to plotly's ``colab``
renderer (Colab is online anyway).

:func:`glue` records a number for the book's ``{glue:text}`` role (myst-nb) and quietly does nothing where
myst-nb is not installed (a chapter opened in Colab). :func:`glue_run_time` glues a chapter's measured run time
beside the idle-machine estimate its header states.
"""
from __future__ import annotations

import hashlib
import html
import json
import os
import re
import sys

import plotly.graph_objects as go
import plotly.io as pio

PLOTLY_MIME = "application/vnd.plotly.v1+json"
#: Name of the environment variable that selects the outputs of :func:`show`. Its value ``html`` (the book's
#: build) gives text/html only; anything else gives text/html and the plotly mime type.
FIGURES_ENV = "PADA_LITE_FIGURES"
#: The plotly.js options of every figure (``responsive`` follows the width of the page's text column).
CONFIG = {"responsive": True, "displaylogo": False}
DEFAULT_HEIGHT = 450
NO_PLOTLY_MESSAGE = ("This figure needs plotly.js, which this page does not load. In the book it is served from "
                     "_static/vendor (build with tools/build_book.sh); in a notebook, a front end with the plotly "
                     "extension (JupyterLab, Notebook 7, VS Code) draws it.")

_used_ids: dict[str, int] = {}


def in_colab() -> bool:
    """Whether this kernel runs in Google Colab."""
    return "google.colab" in sys.modules


def figure_id(fig: go.Figure, name: str | None = None) -> str:
    """A div id that is stable from one build to the next: ``pada-fig-<name>`` or a hash of the figure's JSON.

    Ids already handed out in this kernel get a ``-2``, ``-3``... suffix, so two equal figures on one page
    still get distinct divs.
    """
    if name:
        base = "pada-fig-" + (re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-").lower() or "figure")
    else:
        base = "pada-fig-" + hashlib.sha1(fig.to_json().encode()).hexdigest()[:12]
    count = _used_ids.get(base, 0) + 1
    _used_ids[base] = count
    return base if count == 1 else f"{base}-{count}"


def to_html(fig: go.Figure, div_id: str, config: dict | None = None) -> str:
    """HTML fragment drawing ``fig`` into ``<div id=div_id>`` with the page's plotly.js (not included)."""
    spec = fig.to_plotly_json()
    height = spec.get("layout", {}).get("height") or DEFAULT_HEIGHT
    payload = {"data": spec.get("data", []), "layout": spec.get("layout", {}),
               "config": {**CONFIG, **(config or {})}}
    if spec.get("frames"):
        payload["frames"] = spec["frames"]
    # plotly's encoder handles numpy arrays, dates, NaN; "</" is escaped so the JSON cannot close the <script>
    figure_json = pio.json.to_json_plotly(payload).replace("</", "<\\/")
    message = json.dumps(f"<p><em>{html.escape(NO_PLOTLY_MESSAGE)}</em></p>")
    return (
        f'<div id="{div_id}" class="plotly-graph-div" style="height:{int(height)}px; width:100%;"></div>\n'
        '<script type="text/javascript">\n'
        "(function () {\n"
        f'  var gd = document.getElementById("{div_id}");\n'
        "  if (!gd) { return; }\n"
        f'  if (typeof window.Plotly === "undefined") {{\n'
        f'    gd.style.height = "auto"; gd.innerHTML = {message}; return;\n  }}\n'
        f"  window.Plotly.newPlot(gd, {figure_json});\n"
        "})();\n"
        "</script>"
    )


def glue(name: str, value) -> None:
    """Record ``value`` under ``name`` for ``{glue:text}`name:.3f``` in the chapter's prose (numbers are never typed
    by hand). numpy scalars become Python numbers, so format specs work. No-op without myst-nb."""
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()
    try:
        from myst_nb import glue as myst_glue
    except ImportError:  # e.g. Colab: the prose shows the role, the cell outputs show the numbers
        return
    myst_glue(name, value, display=False)


def run_time_note(seconds: float, expected_s: float, load: float | None, cores: int | None) -> str:
    """The load the chapter ran under, and its time as a multiple of the idle estimate when above 1.5 of it."""
    where = f"{cores} core{'s' if cores != 1 else ''}" if cores else "this machine"
    note = f"under a 1-minute load average of {load:.1f} on {where}" if load is not None else f"on {where}"
    if seconds > 1.5 * expected_s:
        note += f"; {seconds / expected_s:.1f}× the idle-machine estimate of {expected_s:.0f} s"
    return note


def glue_run_time(start: float, expected_s: float) -> float:
    """Glue the chapter's run time since ``start`` (``time.perf_counter()``) for its header; returns the seconds.

    Glues ``chapter_runtime_s``, ``chapter_device`` and ``chapter_load`` (the load average it ran under, and how
    many times ``expected_s``, the idle 2-core estimate the header states, it took when that is over 1.5).
    """
    import time

    import torch

    from .provenance import device_name

    seconds = time.perf_counter() - start
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    glue("chapter_runtime_s", seconds)
    glue("chapter_device", device_name("cuda" if torch.cuda.is_available() else "cpu"))
    glue("chapter_load", run_time_note(seconds, expected_s, load, os.cpu_count()))
    return seconds


def show(fig: go.Figure, name: str | None = None, config: dict | None = None) -> None:
    """Display ``fig`` so that it draws in the offline book, in JupyterLab/Notebook/VS Code and in Colab.

    ``name`` makes the figure's div id ``pada-fig-<name>`` (tests and links can find it); without it the id is
    a hash of the figure. ``config`` adds plotly.js config options to :data:`CONFIG`.
    """
    from IPython.display import display

    if in_colab():
        fig.show(renderer="colab", config={**CONFIG, **(config or {})})
        return
    div_id = figure_id(fig, name)
    bundle = {"text/html": to_html(fig, div_id, config), "text/plain": f"<plotly figure {div_id}>"}
    if os.environ.get(FIGURES_ENV, "").lower() != "html":
        mime = json.loads(pio.to_json(fig, validate=False))  # plain JSON (plotly encodes numpy arrays)
        mime["config"] = {**CONFIG, **(config or {})}
        bundle[PLOTLY_MIME] = mime
    display(bundle, raw=True)


def mean_ci_trace(x, values, name: str, color: str | None = None) -> go.Scatter:
    """A line of the mean over seeds of ``values`` [S, len(x)] with its 95 % t-interval as error bars (none for one
    seed), named with the number of seeds."""
    from .yardsticks import mean_ci95
    cis = [mean_ci95(column) for column in zip(*values)]  # per x, over seeds
    return go.Scatter(x=list(x), y=[c["mean"] for c in cis], mode="lines+markers", line_color=color,
                      name=f"{name} ({len(values)} seeds)",
                      error_y=dict(type="data", symmetric=False, visible=len(values) > 1,
                                   array=[c["ci95"][1] - c["mean"] if c["ci95"] else 0 for c in cis],
                                   arrayminus=[c["mean"] - c["ci95"][0] if c["ci95"] else 0 for c in cis]))


def cell_figure(genotype, cell: str = "normal", title: str | None = None) -> go.Figure:
    """A DARTS cell of ``genotype`` (``cell``: normal or reduce): input states, 4 nodes, labelled op edges, output."""
    pairs = [tuple(p) for p in getattr(genotype, cell)]
    concat = list(getattr(genotype, f"{cell}_concat"))
    nodes = len(pairs) // 2
    pos = {0: (0.0, 1.0), 1: (0.0, -1.0)}
    pos.update({k + 2: (1.0 + k, 0.8 if k % 2 == 0 else -0.8) for k in range(nodes)})
    out = (nodes + 1.0, 0.0)
    fig = go.Figure()
    for i, state in enumerate(concat):                                   # concatenation into the output
        fig.add_annotation(x=out[0], y=out[1], ax=pos[state][0], ay=pos[state][1], xref="x", yref="y", axref="x",
                           ayref="y", showarrow=True, arrowhead=2, arrowwidth=1, arrowcolor="#bbbbbb", text="")
    for n, (op, src) in enumerate(pairs):
        (x0, y0), (x1, y1) = pos[src], pos[n // 2 + 2]
        fig.add_annotation(x=x1, y=y1, ax=x0, ay=y0, xref="x", yref="y", axref="x", ayref="y", showarrow=True,
                           arrowhead=2, arrowwidth=1.5, arrowcolor="#4c78a8", text="", standoff=14, startstandoff=14)
        bend = 0.12 if n % 2 else -0.12                                  # keep a node's two labels apart
        fig.add_annotation(x=(x0 + x1) / 2, y=(y0 + y1) / 2 + bend, text=op, showarrow=False,
                           font={"size": 11, "color": "#333333"}, bgcolor="rgba(255,255,255,0.8)")
    labels = ["c_{k-2}", "c_{k-1}"] + [str(k) for k in range(nodes)] + ["c_{k}"]
    xy = [pos[s] for s in range(nodes + 2)] + [out]
    fig.add_trace(go.Scatter(x=[p[0] for p in xy], y=[p[1] for p in xy], mode="markers+text", text=labels,
                             textposition="middle center", hoverinfo="skip", showlegend=False,
                             marker={"size": 34, "color": ["#f2cf5b"] * 2 + ["#9ecae1"] * nodes + ["#a1d99b"],
                                     "line": {"width": 1, "color": "#555555"}}))
    fig.update_layout(title=title or f"{cell} cell", height=340, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      xaxis={"visible": False, "range": [-0.4, nodes + 1.4]},
                      yaxis={"visible": False, "range": [-1.5, 1.5]}, plot_bgcolor="white")
    return fig
