"""Top-down pictures of closed-loop episodes: MetaDrive's own headless top-down renderer, frames to a GIF."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sd_sim_plugin.errors import SdSimError


class TopDownRecorder:
    """Collects top-down frames of a running env (ego heading up) and writes them as a GIF.

    Uses ``env.render(mode="topdown", window=False)``, which works headless without MetaDrive's 3-D assets.
    ``every`` keeps one frame in ``every`` captures (a 10 Hz env at ``every=2`` gives a 5 fps GIF in real time).
    """

    def __init__(self, env, screen_size: tuple[int, int] = (320, 320), scaling: float = 4.0, every: int = 2) -> None:
        self.env = env
        self.screen_size = screen_size
        self.scaling = scaling
        self.every = max(int(every), 1)
        self.frames: list[np.ndarray] = []
        self._count = 0

    def capture(self, text: dict | None = None) -> None:
        """Render the current state (every ``every``-th call is kept)."""
        self._count += 1
        if (self._count - 1) % self.every:
            return
        frame = self.env.render(mode="topdown", window=False, screen_size=self.screen_size, scaling=self.scaling,
                                target_agent_heading_up=True, text=text or {}, draw_target_vehicle_trajectory=False)
        self.frames.append(np.asarray(frame, dtype=np.uint8).copy())

    def new_episode(self) -> None:
        """Restart the frame counter so each episode's first frame is kept."""
        self._count = 0

    def write_gif(self, path: str | Path, fps: float = 5.0) -> Path:
        """Write the frames collected so far as an animated GIF."""
        return write_gif(self.frames, path, fps)


def write_gif(frames: list[np.ndarray], path: str | Path, fps: float = 5.0) -> Path:
    """Write RGB frames (H, W, 3) uint8 as a looping GIF."""
    import imageio.v2 as imageio

    if not frames:
        raise SdSimError(f"no frames to write to {path}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.mimsave(path, [np.asarray(f, dtype=np.uint8) for f in frames], duration=1.0 / fps, loop=0)
    return path
