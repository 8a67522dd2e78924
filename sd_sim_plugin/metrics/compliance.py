"""Map compliance: how many trajectory poses lie in the drivable area, and how well headings follow the lanes."""

from __future__ import annotations

import numpy as np

from sd_sim_plugin.metrics.selection import BOX_HALF_EXTENT_M, in_box
from sd_sim_plugin.scene.geometry import LaneIndex
from sd_sim_plugin.scene.types import Agents


def compliance_poses(vehicles: Agents, lanes: LaneIndex,
                     half_extent_m: float = BOX_HALF_EXTENT_M) -> tuple[np.ndarray, np.ndarray]:
    """For every valid pose inside the box: whether it is on a lane (drivable area), and its heading gap in degrees.

    The drivable area is the union of lanes (centreline +- half the lane width); the heading gap is the smallest
    |heading - lane heading| over the lanes holding the pose, NaN for poses off the lanes (a car park has no lane
    heading). Poses outside the box are left out: the stored map may not reach them.
    """
    poses = vehicles.trajectory[vehicles.valid]
    poses = poses[in_box(poses[:, :2], half_extent_m)].astype(np.float64)
    q = lanes.query(poses[:, :2], poses[:, 2])
    return q["on_lane"], np.where(q["on_lane"], np.rad2deg(q["heading_gap"]), np.nan)


def summarise_compliance(on_lane: np.ndarray, heading_gap_deg: np.ndarray) -> dict[str, float]:
    """Pooled compliance: drivable-area fraction, and mean / median lane-heading gap (degrees) of on-lane poses."""
    on_lane = np.asarray(on_lane, bool)
    gap = np.asarray(heading_gap_deg, np.float64)
    gap = gap[np.isfinite(gap)]
    return {
        "drivable_fraction": float(on_lane.mean()) if len(on_lane) else float("nan"),
        "heading_gap_mean_deg": float(gap.mean()) if len(gap) else float("nan"),
        "heading_gap_median_deg": float(np.median(gap)) if len(gap) else float("nan"),
        "poses": int(len(on_lane)),
    }
