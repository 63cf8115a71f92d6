"""sweeps/figures.py (the studies' and notebooks' matplotlib figures) on hand-made values:
what each draws, read back from the axes, against numpy."""

import numpy as np

from regularity_jax.sweeps import figures


def test_group_histogram_bars_are_each_groups_density_with_clipped_ends():
  values = np.array([-50.0, 0.1, 0.2, 0.3, 0.9, 1.0, np.nan, 99.0])
  groups = {"a": np.array([1, 1, 1, 0, 0, 0, 1, 0], bool), "b": ~np.eye(8, dtype=bool)[0]}
  fig, (ax,) = figures.subplots(1)
  figures.group_histogram(ax, values, groups, bins=4, clip=(0.0, 1.0))
  edges = np.linspace(0.0, 1.0, 5)
  for container, mask in zip(ax.containers, groups.values()):
    v = values[mask & np.isfinite(values)]
    want, _ = np.histogram(np.clip(v, 0.0, 1.0), bins=edges, density=True)
    np.testing.assert_allclose([bar.get_height() for bar in container], want)
  assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a (n=3)", "b (n=6)"]
  figures.plt.close(fig)


def test_group_histogram_without_finite_values_says_so():
  fig, (ax,) = figures.subplots(1)
  figures.group_histogram(ax, np.full(3, np.nan), {"all": np.ones(3, bool)})
  assert [t.get_text() for t in ax.texts] == ["no values"]
  figures.plt.close(fig)


def test_curves_and_image_grid_draw_what_they_are_given():
  fig, axes = figures.subplots(3, ncols=2)
  assert len(axes) == 3 and not fig.axes[3].get_visible()
  figures.curves(axes[0], [1, 2, 3], {"x": [3, 2, 1], "y": [0, 1, 0]}, title="t")
  np.testing.assert_array_equal(axes[0].lines[1].get_ydata(), [0, 1, 0])
  figures.plt.close(fig)
  images = np.stack([np.arange(16.0).reshape(4, 4, 1), np.zeros((4, 4, 1))])
  grid = figures.image_grid(images, ["first", "second\nline"], ncols=2)
  shown = grid.axes[0].images[0].get_array()
  np.testing.assert_allclose(shown, np.arange(16.0).reshape(4, 4) / 15.0)
  assert grid.axes[1].get_title() == "second\nline"
  figures.plt.close(grid)
