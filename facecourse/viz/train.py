"""Figures of a training run's logs (``metrics.csv`` of the engine, :func:`facecourse.train.read_metrics`)."""

from __future__ import annotations

from collections import defaultdict
from typing import Sequence

import matplotlib.pyplot as plt

from facecourse.train.loop import MetricRow


def metric_series(rows: Sequence[MetricRow], split: str = "train") -> dict[str, tuple[list[int], list[float]]]:
    """``{name: (steps, values)}`` of the rows of ``split`` (``"train"``: loss means per logging window,
    ``"val"``: validation metrics), in step order; ``lr`` included."""
    series: dict[str, tuple[list[int], list[float]]] = defaultdict(lambda: ([], []))
    for row in sorted((r for r in rows if r.split == split), key=lambda r: r.step):
        series[row.name][0].append(row.step)
        series[row.name][1].append(row.value)
    return dict(series)


def plot_loss_terms(rows: Sequence[MetricRow], names: Sequence[str] | None = None, title: str | None = None):
    """The weighted training loss terms of a run against the optimiser step (log scale), the total in black, and
    the learning rate on a second panel.

    Args:
        rows: :func:`~facecourse.train.read_metrics` of a run. names: terms to draw (default all but ``lr``).

    Returns:
        The ``Figure``.
    """
    series = metric_series(rows, "train")
    if not series:
        raise ValueError("no training rows in the metrics (was the run logged?)")
    names = [n for n in (names or sorted(series)) if n not in ("lr", "loss")]
    fig, (ax, lr_ax) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [3, 1]})
    if "loss" in series:
        ax.plot(*series["loss"], color="black", lw=2, label="total")
    for name in names:
        steps, values = series[name]
        if max(values) > 0:
            ax.plot(steps, values, label=name)
    ax.set(xlabel="optimiser step", ylabel="weighted term (mean over the logging window)", yscale="log",
           title=title or "training loss terms")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, ncol=2, loc="upper right")
    if "lr" in series:
        lr_ax.plot(*series["lr"], color="C7")
    lr_ax.set(xlabel="optimiser step", ylabel="learning rate", title="schedule")
    lr_ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    fig.tight_layout()
    return fig


__all__ = ["metric_series", "plot_loss_terms"]
