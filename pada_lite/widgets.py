"""The τ-schedule widget of the book, in two forms built from the same schedule code.

Both forms take the scores a PA&DA run recorded at the end of every epoch (PA op scores ``[K]`` or ``[E, K]``, DA
per-sample scores ``[N]``) and turn them into distributions with
:func:`pada_lite.schedules.distributions_after_epoch`, the rule the samplers use:

- :func:`tau_schedule_figure`: a plotly figure with a slider over the epochs that draws τ, the PA op distribution p
  and the DA sample distribution q (as ``N·q``, sorted) for several schedules at once (click a schedule in the
  legend to hide or show it). Every epoch's data are in the figure, so it works in the static HTML, with no kernel.
- :func:`tau_schedule_widget`: an ipywidgets control for a live kernel (a schedule dropdown and an epoch slider)
  that redraws the same figure for the chosen schedule and epoch with :func:`pada_lite.plotting.show`.
- :func:`tau_value_figure`: the mixing rule p = τ·scores/Σ scores + (1 − τ)·uniform for one epoch's scores, with a
  slider over τ itself (0 to 1), again static; :func:`tau_value_widget` is its live control (epoch and τ sliders).

Epochs are counted from 1 here, as in a training's history: "epoch k" is the k-th epoch; its scores are mixed with
τ = schedule(k − 1, E) and epoch k + 1 samples from the result (see :mod:`pada_lite.schedules`).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .schedules import distributions_after_epoch, make_schedule, mix_with_uniform

#: The schedules compared by default, the reference (linear), a slower start (cosine) and a constant.
DEFAULT_SCHEDULES = {"linear": "linear", "cosine": "cosine", "constant 0.5": 0.5}
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
#: Points of the sorted ``N·q`` curve (quantiles of the samples), which keeps the figure small for any N.
CURVE_POINTS = 201
TRACES_PER_SCHEDULE = 4  # τ curve, τ of the current epoch, p bars, sorted N·q curve
DYNAMIC = (1, 2, 3)      # the traces of a schedule that change with the epoch


def _check_scores(op_scores: Sequence, sample_scores: Sequence) -> int:
    """The number of recorded epochs, after checking both score lists have one entry per epoch."""
    if len(op_scores) == 0 or len(op_scores) != len(sample_scores):
        raise ValueError(f"need one op-score and one sample-score entry per epoch, got {len(op_scores)} and "
                         f"{len(sample_scores)}: record both in the same epoch callback")
    return len(op_scores)


def _schedules(schedules: dict | None) -> dict:
    """``{label: schedule}`` with every spec validated (a bad one raises ScheduleError)."""
    schedules = dict(DEFAULT_SCHEDULES if schedules is None else schedules)
    if not schedules:
        raise ValueError("no schedule to draw: pass at least one, e.g. {'linear': 'linear'}")
    for spec in schedules.values():
        make_schedule(spec)
    return schedules


def schedule_snapshot(op_scores: Sequence, sample_scores: Sequence, schedule: Any, epoch: int,
                      num_epochs: int | None = None, points: int = CURVE_POINTS) -> dict:
    """τ, p (mean over edges if per edge) and the sorted ``N·q`` curve built at the end of ``epoch`` (from 1)."""
    recorded = _check_scores(op_scores, sample_scores)
    num_epochs = num_epochs or recorded
    if not 1 <= epoch <= recorded:
        raise ValueError(f"epoch {epoch} was not recorded: epochs run from 1 to {recorded}")
    p, q = distributions_after_epoch(op_scores[epoch - 1], sample_scores[epoch - 1], schedule, epoch - 1, num_epochs)
    return {"tau": make_schedule(schedule)(epoch - 1, num_epochs), **_summary(p, q, points)}


def _summary(p, q, points: int) -> dict:
    """p averaged over edges (``[K]``), and the sorted ``N·q`` curve at ``points`` quantiles of the samples."""
    nq = np.sort(len(q) * q.numpy())[::-1]
    at = np.unique(np.linspace(0, len(nq) - 1, min(points, len(nq))).round().astype(int))
    return {"p": p.reshape(-1, p.shape[-1]).mean(0).numpy(), "share": (at + 1) / len(nq), "nq": nq[at]}


def _taus(schedule: Any, num_epochs: int) -> list[float]:
    """τ mixed in at the end of epochs 1..E."""
    schedule = make_schedule(schedule)
    return [schedule(k - 1, num_epochs) for k in range(1, num_epochs + 1)]


def _dynamic_data(snapshot: dict, epoch: int, ops: Sequence[str]) -> list[tuple]:
    """(x, y) of the τ marker, the p bars and the N·q curve of one schedule at ``epoch`` (plain lists)."""
    return [([epoch], [round(snapshot["tau"], 6)]), (list(ops), snapshot["p"].round(6).tolist()),
            (snapshot["share"].round(5).tolist(), snapshot["nq"].round(5).tolist())]


def _add_schedule(fig: go.Figure, label: str, color: str, taus: list[float], data: list[tuple]) -> None:
    """The four traces of one schedule (legend group ``label``)."""
    (tx, ty), (px, py), (qx, qy) = data
    fig.add_trace(go.Scatter(x=list(range(1, len(taus) + 1)), y=taus, mode="lines+markers", name=label,
                             legendgroup=label, line=dict(color=color), marker=dict(size=5, color=color),
                             hovertemplate="end of epoch %{x}: τ = %{y:.3f}<extra>" + label + "</extra>"), row=1, col=1)
    fig.add_trace(go.Scatter(x=tx, y=ty, mode="markers", name=label, showlegend=False, legendgroup=label,
                             marker=dict(size=14, color=color, line=dict(color="white", width=2)), hoverinfo="skip"),
                  row=1, col=1)
    fig.add_trace(go.Bar(x=px, y=py, name=label, showlegend=False, legendgroup=label, marker_color=color,
                         hovertemplate="%{x}: p = %{y:.3f}<extra>" + label + "</extra>"), row=1, col=2)
    fig.add_trace(go.Scatter(x=qx, y=qy, mode="lines", name=label, showlegend=False, legendgroup=label,
                             line=dict(color=color), hovertemplate="top %{x:.0%} of samples: N·q = %{y:.2f}<extra>"
                             + label + "</extra>"), row=2, col=1)


def _title(epoch: int, num_epochs: int, taus: dict[str, float]) -> str:
    """Figure title naming the epoch and each schedule's τ."""
    then = f"sampled in epoch {epoch + 1}" if epoch < num_epochs else "training ends"
    values = ", ".join(f"{tau:.2f} ({label})" for label, tau in taus.items())
    return f"Distributions built at the end of epoch {epoch} of {num_epochs} ({then})<br>τ = {values}"


def _layout(fig: go.Figure, num_ops: int, p_max: float, nq_max: float, num_epochs: int, slider: bool) -> None:
    """Axes, reference lines (uniform) and fixed ranges, so that moving through the epochs keeps the scales."""
    fig.add_hline(y=1.0 / num_ops, line=dict(dash="dot", color="#888"), row=1, col=2)
    fig.add_hline(y=1.0, line=dict(dash="dot", color="#888"), row=2, col=1)
    fig.update_xaxes(title_text="epoch", range=[0.5, num_epochs + 0.5], dtick=1, row=1, col=1)
    fig.update_yaxes(title_text="τ", range=[-0.05, 1.05], row=1, col=1)
    fig.update_yaxes(title_text="p (dotted: uniform)", range=[0, 1.1 * p_max], row=1, col=2)
    fig.update_xaxes(title_text="share of training samples, sorted by q (largest first)", tickformat=".0%",
                     range=[0, 1], row=2, col=1)
    fig.update_yaxes(title_text="N·q (dotted: uniform = 1)", range=[0, 1.05 * nq_max], row=2, col=1)
    bottom = 170 if slider else 90
    fig.update_layout(template="plotly_white", height=560 + bottom, barmode="group",
                      margin=dict(t=110, b=bottom, l=60, r=20),
                      legend=dict(orientation="h", x=0, y=-0.36 if slider else -0.16, yanchor="top",
                                  title_text="τ schedule (click to hide):"))


def _empty_figure() -> go.Figure:
    """The 2 x 2 grid: τ (top left), p (top right), sorted N·q (bottom, full width)."""
    return make_subplots(rows=2, cols=2, specs=[[{}, {}], [{"colspan": 2}, None]], vertical_spacing=0.22,
                         subplot_titles=("τ mixed in at the end of each epoch", "PA: op distribution p",
                                         "DA: sample distribution q, as N·q over the sorted samples"))


def tau_schedule_figure(op_scores: Sequence, sample_scores: Sequence, schedules: dict | None = None,
                        ops: Sequence[str] | None = None, num_epochs: int | None = None,
                        epoch: int | None = None, points: int = CURVE_POINTS) -> go.Figure:
    """Plotly figure of τ, p and sorted N·q per schedule with a slider over the epochs (``epoch``: that one only)."""
    recorded = _check_scores(op_scores, sample_scores)
    num_epochs = num_epochs or recorded
    schedules = _schedules(schedules)
    snaps = {label: [schedule_snapshot(op_scores, sample_scores, spec, k, num_epochs, points)
                     for k in range(1, recorded + 1)] for label, spec in schedules.items()}
    shown = 1 if epoch is None else epoch
    if not 1 <= shown <= recorded:
        raise ValueError(f"epoch {epoch} was not recorded: epochs run from 1 to {recorded}")
    num_ops = len(snaps[next(iter(snaps))][0]["p"])
    ops = list(ops) if ops is not None else [f"op {j}" for j in range(num_ops)]
    fig = _empty_figure()
    for s, (label, spec) in enumerate(schedules.items()):
        taus = _taus(spec, num_epochs)[:recorded]
        _add_schedule(fig, label, COLORS[s % len(COLORS)], taus, _dynamic_data(snaps[label][shown - 1], shown, ops))
    p_max = max(float(snap["p"].max()) for runs in snaps.values() for snap in runs)
    nq_max = max(float(snap["nq"].max()) for runs in snaps.values() for snap in runs)
    _layout(fig, num_ops, p_max, nq_max, recorded, slider=epoch is None)
    fig.update_layout(title=_title(shown, num_epochs, {label: runs[shown - 1]["tau"] for label, runs in snaps.items()}))
    if epoch is None:
        fig.update_layout(sliders=[_slider(snaps, ops, num_epochs)])
    return fig


def _slider(snaps: dict, ops: Sequence[str], num_epochs: int) -> dict:
    """One slider step per recorded epoch: it restyles every schedule's dynamic traces and retitles the figure."""
    indices = [s * TRACES_PER_SCHEDULE + t for s in range(len(snaps)) for t in DYNAMIC]
    steps = []
    for i in range(len(next(iter(snaps.values())))):
        data = [xy for runs in snaps.values() for xy in _dynamic_data(runs[i], i + 1, ops)]
        title = _title(i + 1, num_epochs, {label: runs[i]["tau"] for label, runs in snaps.items()})
        steps.append(dict(method="update", label=str(i + 1),
                          args=[{"x": [x for x, _ in data], "y": [y for _, y in data]}, {"title.text": title},
                                indices]))
    return dict(active=0, steps=steps, currentvalue=dict(prefix="end of epoch "), pad=dict(t=10), y=-0.14,
                yanchor="top")

def tau_schedule_widget(op_scores: Sequence, sample_scores: Sequence, schedules: dict | None = None,
                        ops: Sequence[str] | None = None, num_epochs: int | None = None):
    """An ipywidgets control (schedule dropdown, epoch slider) that redraws :func:`tau_schedule_figure` live.

    The returned ``VBox`` has the attributes ``schedule`` (Dropdown), ``epoch`` (IntSlider), ``output`` (the
    Output the figure is shown in) and ``figure`` (the figure drawn last).
    """
    import ipywidgets as widgets

    recorded = _check_scores(op_scores, sample_scores)
    schedules = _schedules(schedules)
    schedule = widgets.Dropdown(options=list(schedules), description="τ schedule")
    epoch = widgets.IntSlider(value=1, min=1, max=recorded, description="epoch", continuous_update=False)
    control = _live_control([schedule, epoch], lambda: tau_schedule_figure(
        op_scores, sample_scores, {schedule.value: schedules[schedule.value]}, ops, num_epochs, epoch=epoch.value))
    control.schedule, control.epoch = schedule, epoch
    return control


def _live_control(inputs: list, make_figure):
    """A ``VBox`` of ``inputs`` above an ``output`` that shows ``make_figure()`` again whenever an input changes."""
    import ipywidgets as widgets

    from .plotting import show

    output = widgets.Output()
    control = widgets.VBox([widgets.HBox(inputs), output])
    control.output = output

    def redraw(_change=None) -> None:
        control.figure = make_figure()
        with output:
            output.clear_output(wait=True)
            show(control.figure)

    for item in inputs:
        item.observe(redraw, names="value")
    redraw()
    return control


#: The values the τ slider offers, from 0 to 1 in steps of 0.05.
TAU_VALUES = tuple(round(0.05 * i, 2) for i in range(21))


def tau_value_snapshot(op_scores, sample_scores, tau: float, points: int = CURVE_POINTS) -> dict:
    """p (mean over edges if per edge) and the sorted ``N·q`` curve of one epoch's scores mixed with ``tau``."""
    return {"tau": float(tau), **_summary(mix_with_uniform(op_scores, tau), mix_with_uniform(sample_scores, tau),
                                          points)}


def _tau_value_data(snapshot: dict, ops: Sequence[str]) -> list[tuple]:
    """(x, y) of the p bars and of the N·q curve (plain lists)."""
    return [(list(ops), snapshot["p"].round(6).tolist()),
            (snapshot["share"].round(5).tolist(), snapshot["nq"].round(5).tolist())]


def _tau_value_title(tau: float, epoch: int | None) -> str:
    scores = f"the scores of epoch {epoch}" if epoch else "the scores"
    return f"p = τ · score / Σ score + (1 − τ) · uniform, for {scores}, with τ = {tau:.2f}"


def tau_value_figure(op_scores, sample_scores, ops: Sequence[str] | None = None, epoch: int | None = None,
                     taus: Sequence[float] = TAU_VALUES, tau: float | None = None,
                     points: int = CURVE_POINTS) -> go.Figure:
    """Plotly figure of one epoch's PA op distribution p and DA curve N·q with a slider over τ (``tau``: that one only).

    ``op_scores`` ``[K]`` or ``[E, K]`` and ``sample_scores`` ``[N]`` are the scores recorded in one epoch (``epoch``
    only labels the title).
    """
    taus = [float(tau)] if tau is not None else [float(t) for t in taus]
    if not taus:
        raise ValueError("no τ value to draw: pass taus, e.g. (0.0, 0.5, 1.0), or tau")
    snaps = [tau_value_snapshot(op_scores, sample_scores, t, points) for t in taus]
    ops = list(ops) if ops is not None else [f"op {j}" for j in range(len(snaps[0]["p"]))]
    (px, py), (qx, qy) = _tau_value_data(snaps[0], ops)
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12,
                        subplot_titles=("PA: op distribution p", "DA: N·q over the samples, sorted"))
    fig.add_trace(go.Bar(x=px, y=py, marker_color=COLORS[0], showlegend=False,
                         hovertemplate="%{x}: p = %{y:.3f}<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Scatter(x=qx, y=qy, mode="lines", line=dict(color=COLORS[1]), showlegend=False,
                             hovertemplate="top %{x:.0%} of samples: N·q = %{y:.2f}<extra></extra>"), row=1, col=2)
    fig.add_hline(y=1.0 / len(ops), line=dict(dash="dot", color="#888"), row=1, col=1)
    fig.add_hline(y=1.0, line=dict(dash="dot", color="#888"), row=1, col=2)
    p_max = max(float(snap["p"].max()) for snap in snaps)
    nq_max = max(float(snap["nq"].max()) for snap in snaps)
    fig.update_yaxes(title_text="p (dotted: uniform)", range=[0, 1.1 * p_max], row=1, col=1)
    fig.update_xaxes(title_text="share of training samples, sorted by q", tickformat=".0%", range=[0, 1], row=1, col=2)
    fig.update_yaxes(title_text="N·q (dotted: uniform = 1)", range=[0, 1.05 * nq_max], row=1, col=2)
    slider = len(taus) > 1
    fig.update_layout(template="plotly_white", height=430 + (90 if slider else 0),
                      title=_tau_value_title(taus[0], epoch),
                      margin=dict(t=90, b=150 if slider else 60, l=60, r=20))
    if slider:
        steps = [dict(method="update", label=f"{t:.2f}",
                      args=[{"x": [x for x, _ in _tau_value_data(snap, ops)],
                             "y": [y for _, y in _tau_value_data(snap, ops)]},
                            {"title.text": _tau_value_title(t, epoch)}, [0, 1]])
                 for t, snap in zip(taus, snaps)]
        fig.update_layout(sliders=[dict(active=0, steps=steps, currentvalue=dict(prefix="τ = "), pad=dict(t=10),
                                        y=-0.25, yanchor="top")])
    return fig


def tau_value_widget(op_scores: Sequence, sample_scores: Sequence, ops: Sequence[str] | None = None):
    """An ipywidgets control (epoch slider, τ slider) that redraws :func:`tau_value_figure` live.

    The returned ``VBox`` has the attributes ``epoch`` (IntSlider), ``tau`` (FloatSlider), ``output`` and
    ``figure`` (the figure drawn last).
    """
    import ipywidgets as widgets

    recorded = _check_scores(op_scores, sample_scores)
    epoch = widgets.IntSlider(value=recorded, min=1, max=recorded, description="epoch", continuous_update=False)
    tau = widgets.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="τ", continuous_update=False)
    control = _live_control([epoch, tau], lambda: tau_value_figure(
        op_scores[epoch.value - 1], sample_scores[epoch.value - 1], ops, epoch=epoch.value, tau=tau.value))
    control.epoch, control.tau = epoch, tau
    return control
