"""The run-log figures: series in step order per split, one line per non-zero term plus the total, absolute and
relative to its first logged value."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest

from facecourse.train.loop import MetricRow
from facecourse.viz.train import metric_series, plot_loss_terms

ROWS = [MetricRow(20, 2, "train", "loss", 0.5), MetricRow(10, 1, "train", "loss", 1.0),
        MetricRow(10, 1, "train", "landmark", 0.4), MetricRow(20, 2, "train", "landmark", 0.2),
        MetricRow(10, 1, "train", "id3d", 0.0), MetricRow(20, 2, "train", "id3d", 0.0),
        MetricRow(10, 1, "train", "lr", 1e-3), MetricRow(20, 2, "train", "lr", 9e-4),
        MetricRow(20, 2, "val", "now_median_mm", 0.7)]


def test_series_are_per_split_and_in_step_order():
    series = metric_series(ROWS)
    assert series["loss"] == ([10, 20], [1.0, 0.5])
    assert set(series) == {"loss", "landmark", "id3d", "lr"}
    assert metric_series(ROWS, "val") == {"now_median_mm": ([20], [0.7])}


def test_the_figure_draws_the_total_and_each_nonzero_term():
    fig = plot_loss_terms(ROWS)
    ax, rel_ax, lr_ax = fig.axes
    assert [line.get_label() for line in ax.get_lines()] == ["total", "landmark"], "an all-zero term is not drawn"
    assert [list(line.get_ydata()) for line in rel_ax.get_lines()[:2]] == [[1.0, 0.5], [1.0, 0.5]]  # / first value
    assert rel_ax.get_lines()[1].get_color() == ax.get_lines()[1].get_color()  # one colour per term, one legend
    assert list(lr_ax.get_lines()[0].get_ydata()) == [1e-3, 9e-4]
    assert len(plot_loss_terms(ROWS, relative=()).axes[1].get_lines()) == 2  # the total and the 1-line
    late = ROWS + [MetricRow(10, 1, "train", "eye", 0.0), MetricRow(20, 2, "train", "eye", 0.1)]  # starts at 0
    ax, rel_ax, _ = plot_loss_terms(late).axes
    assert [line.get_label() for line in ax.get_lines()] == ["total", "eye", "landmark"]
    assert len(rel_ax.get_lines()) == 3, "no relative curve for a term that starts at 0 (total, landmark, 1-line)"
    with pytest.raises(ValueError, match="no training rows"):
        plot_loss_terms([r for r in ROWS if r.split == "val"])
