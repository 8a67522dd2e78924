"""Pictures: PNG size and content, grids, frames and GIFs."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np

from sd_sim_plugin.raster.render import (
    FUTURE_COLOUR, PAST_COLOUR, render_scene, render_scene_grid, scene_image, write_gif,
)


def _has_colour(image: np.ndarray, hex_colour: str, tol: int = 40) -> bool:
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
    return bool((np.abs(image[..., :3].astype(int) - rgb).sum(axis=-1) < tol).any())


def test_render_scene_writes_png_of_the_right_size(tmp_path, crossing_scene) -> None:
    path = render_scene(crossing_scene, tmp_path / "sub" / "scene.png", title="hand-made", size_px=320)
    image = iio.imread(path)
    assert path.stat().st_size > 1000 and image.shape[:2] == (320, 320)
    assert _has_colour(image, PAST_COLOUR) and _has_colour(image, FUTURE_COLOUR)  # trajectories pink -> blue


def test_side_by_side_reference_doubles_the_width(tmp_path, crossing_scene) -> None:
    image = iio.imread(render_scene(crossing_scene, tmp_path / "pair.png", reference=crossing_scene, size_px=200))
    assert image.shape[:2] == (200, 400)


def test_grid_and_gif(tmp_path, crossing_scene) -> None:
    grid = iio.imread(render_scene_grid([crossing_scene] * 5, tmp_path / "grid.png", cols=3, size_px=100))
    assert grid.shape[:2] == (200, 300)
    frames = []
    for k in range(3):
        crossing_scene.agents.trajectory[1, :, 0] += 4.0 * k  # the car ahead moves away
        frames.append(scene_image(crossing_scene, size_px=96))
    assert frames[0].shape == (96, 96, 3) and frames[0].dtype == np.uint8
    gif = iio.imread(write_gif(frames, tmp_path / "clip.gif", fps=5), index=None)
    assert gif.shape[0] == 3 and gif.shape[1:3] == (96, 96)
