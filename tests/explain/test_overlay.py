"""Overlay colours and figure files."""

import matplotlib
import numpy as np
import pytest

from tfcxr.data.images import load_image
from tfcxr.errors import TfcxrError
from tfcxr.explain.overlay import Panel, overlay, save_figure, save_overlay


def test_overlay_leaves_cold_regions_alone_and_colours_hot_ones():
    film = np.linspace(0, 1, 64 * 48, dtype=np.float32).reshape(64, 48)
    heat = np.zeros((4, 3), np.float32)
    heat[0, 0] = 1.0
    rgb = overlay(film, heat, cmap="inferno", alpha=0.5)
    assert rgb.shape == (64, 48, 3) and rgb.dtype == np.float32
    np.testing.assert_allclose(rgb[-1, -1], [film[-1, -1]] * 3, atol=1e-6)  # no heat: the film
    hot = np.asarray(matplotlib.colormaps["inferno"](1.0)[:3])
    np.testing.assert_allclose(rgb[0, 0], 0.5 * film[0, 0] + 0.5 * hot, atol=1e-5)


def test_saved_figures_are_pngs(tmp_path):
    film = np.random.default_rng(0).random((100, 80)).astype(np.float32)
    heat = np.random.default_rng(1).random((5, 5))
    one = save_overlay(tmp_path / "a" / "one.png", film, heat, "Mass", 0.31, show_film=False)
    both = save_figure(tmp_path / "two.png", film[..., None],
                       [Panel("teacher", heat, "Mass", 0.5), Panel("student", heat, "Mass")])
    assert load_image(one).shape[0] > 100 and load_image(both).shape[1] > load_image(one).shape[1]


def test_bad_inputs_are_refused(tmp_path):
    with pytest.raises(TfcxrError, match="one grey channel"):
        overlay(np.zeros((8, 8, 3)), np.zeros((2, 2)))
    with pytest.raises(TfcxrError, match="2-D"):
        overlay(np.zeros((8, 8)), np.zeros((1, 2, 2)))
    with pytest.raises(TfcxrError, match="no heat maps"):
        save_figure(tmp_path / "x.png", np.zeros((8, 8)), [])
    assert not list(tmp_path.iterdir())
