"""Figures of a training run's logs (``metrics.csv`` of the engine, :func:`facecourse.train.read_metrics`)."""

from __future__ import annotations

from collections import defaultdict
from typing import Sequence

import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter

from facecourse.train.loop import MetricRow


def metric_series(rows: Sequence[MetricRow], split: str = "train") -> dict[str, tuple[list[int], list[float]]]:
    """``{name: (steps, values)}`` of the rows of ``split`` (``"train"``: loss means per logging window,
    ``"val"``: validation metrics), in step order; ``lr`` included."""
    series: dict[str, tuple[list[int], list[float]]] = defaultdict(lambda: ([], []))
    for row in sorted((r for r in rows if r.split == split), key=lambda r: r.step):
        series[row.name][0].append(row.step)
        series[row.name][1].append(row.value)
    return dict(series)


def plot_loss_terms(rows: Sequence[MetricRow], names: Sequence[str] | None = None, title: str | None = None,
                    relative: Sequence[str] | None = None):
    """A run's weighted training loss terms against the optimiser step, in three panels: the terms themselves
    (log scale, the total in black: which term dominates the objective), each term divided by its first logged
    value (log scale: which term the network learns to lower, and by how much) and the learning rate.

    Args:
        rows: :func:`~facecourse.train.read_metrics` of a run. names: terms to draw (default all but ``lr``);
            terms that are zero throughout are left out.
        title: the first panel's title.
        relative: terms of the relative panel (default all drawn; the total is always there), e.g. the data
            terms without the priors, whose relative changes can be orders of magnitude. A term whose first
            logged value is 0 has no relative curve.

    Returns:
        The ``Figure`` (axes: terms, relative terms, learning rate).
    """
    series = metric_series(rows, "train")
    if not series:
        raise ValueError("no training rows in the metrics (was the run logged?)")
    names = [n for n in (names or sorted(series)) if n not in ("lr", "loss") and max(series[n][1]) > 0]
    fig, (ax, rel_ax, lr_ax) = plt.subplots(1, 3, figsize=(12, 4.2), gridspec_kw={"width_ratios": [2.2, 2.2, 1]})
    curves = ([("total", series["loss"], dict(color="black", lw=2))] if "loss" in series else []) + [
        (name, series[name], dict(color=f"C{i % 10}")) for i, name in enumerate(names)]
    for label, (steps, values), style in curves:
        ax.plot(steps, values, label=label, **style)
        if values[0] > 0 and (relative is None or label == "total" or label in relative):
            rel_ax.plot(steps, [v / values[0] for v in values], **style)
    ax.set(xlabel="optimiser step", ylabel="weighted term (mean over the logging window)", yscale="log",
           title=title or "training loss terms")
    rel_ax.axhline(1.0, color="gray", ls=":", lw=1)
    rel_ax.set(xlabel="optimiser step", ylabel="term / its first logged value", yscale="log",
               title="relative to the start (below 1: learnt)")
    plain = FuncFormatter(lambda y, _: f"{y:g}")
    rel_ax.yaxis.set_major_formatter(plain)
    low, high = rel_ax.get_ylim()
    if high / low < 10:  # within a decade the log axis has no labelled major tick but 1: label the minor ones
        rel_ax.yaxis.set_minor_formatter(plain)
    for a in (ax, rel_ax):
        a.grid(alpha=0.3, which="both")
    if "lr" in series:
        lr_ax.plot(*series["lr"], color="C7")
    lr_ax.set(xlabel="optimiser step", ylabel="learning rate", title="schedule")
    lr_ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    fig.legend(*ax.get_legend_handles_labels(), loc="lower center", ncol=min(len(curves), 6), fontsize=8,
               frameon=False)
    fig.tight_layout(rect=(0, 0.06 * (1 + (len(curves) - 1) // 6), 1, 1))
    return fig


__all__ = ["metric_series", "plot_loss_terms"]
