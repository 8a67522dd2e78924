"""``sd-sim render``: scene files and shards in, PNG out; bad input is one line and exit code 2."""

from __future__ import annotations

import imageio.v3 as iio
import pytest

from sd_sim_plugin.cli import main
from sd_sim_plugin.data.store import write_shard
from sd_sim_plugin.scene.io import save_scene


def test_render_scene_file_and_shard(tmp_path, crossing_scene, capsys) -> None:
    scene_path = save_scene(crossing_scene, tmp_path / "scene.npz")
    assert main(["render", str(scene_path), "--out", str(tmp_path / "a.png"), "--size-px", "128"]) == 0
    assert iio.imread(tmp_path / "a.png").shape[:2] == (128, 128)
    shard = write_shard(tmp_path / "shard.npz", [crossing_scene, crossing_scene], {"unit": "test"})
    assert main(["render", str(shard), "--index", "1", "--out", str(tmp_path / "b.png"), "--size-px", "128",
                 "--reference", str(scene_path)]) == 0
    assert iio.imread(tmp_path / "b.png").shape[:2] == (128, 256)


@pytest.mark.parametrize("case", ["missing", "not_npz", "bad_index", "scene_index", "not_png"])
def test_bad_input_is_one_line(tmp_path, crossing_scene, capsys, case) -> None:
    scene_path = save_scene(crossing_scene, tmp_path / "scene.npz")
    shard = write_shard(tmp_path / "shard.npz", [crossing_scene], {"unit": "test"})
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file")
    args = {
        "missing": [str(tmp_path / "nope.npz"), "--out", str(tmp_path / "x.png")],
        "not_npz": [str(junk), "--out", str(tmp_path / "x.png")],
        "bad_index": [str(shard), "--index", "3", "--out", str(tmp_path / "x.png")],
        "scene_index": [str(scene_path), "--index", "1", "--out", str(tmp_path / "x.png")],
        "not_png": [str(scene_path), "--out", str(tmp_path / "x.jpg")],
    }[case]
    assert main(["render", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sd-sim render: error:") and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "x.png").exists()
