"""Detection-style box proposals on a grid of output cells: training targets from agents, and agents from proposals.

Per cell (row 0 = front, col 0 = left, like the BEV raster) the proposal channels are:
existence (1), heading cos/sin (2), signed distances from the cell centre to the box's front, left, back and right
edges (4, metres / EDGE_SCALE), trajectory deltas chained outward from t = 0 in the agent's t = 0 heading frame
(3 per non-t0 pose: dx / DELTA_SCALE, dy / DELTA_SCALE, dheading), and agent-type logits (3).
Edge distances are signed rather than logged: pedestrian boxes are smaller than a 2.5 m cell, so the cell centre
can lie outside the box.
"""

from __future__ import annotations

import numpy as np

from sd_sim_plugin.model.config import ModelConfig
from sd_sim_plugin.raster.bev import MAP_CHANNELS
from sd_sim_plugin.scene.geometry import LaneIndex, boxes_overlap
from sd_sim_plugin.scene.types import Agents, AgentType, wrap_angle

EDGE_SCALE = 4.0
DELTA_SCALE = 10.0
# With a requested count, peaks down to this probability may be kept: on 150 held-out PG windows a floor of 0.05
# gave 4.69 vehicles for 5.14 asked, 0.001 gave 5.01 at the same position and velocity MMD (docs/model.md).
MIN_COUNT_PROB = 0.001
NUM_TYPES = len(AgentType)


def proposal_channels(cfg: ModelConfig) -> int:
    """Channels of the decoder output."""
    return 1 + 2 + 4 + 3 * cfg.num_deltas + NUM_TYPES


def target_channels(cfg: ModelConfig) -> int:
    """Channels of a target grid: existence, cos/sin, edges, deltas, delta validity, type index."""
    return 1 + 2 + 4 + 3 * cfg.num_deltas + cfg.num_deltas + 1


def cell_centres(cfg: ModelConfig, cells: int | None = None) -> np.ndarray:
    """(G, G, 2) ego-frame (x, y) of every cell centre of a ``cells`` x ``cells`` grid over the raster (default: the
    output grid); row 0 is the front (+x), column 0 the left (+y)."""
    g = cfg.grid if cells is None else cells
    centre = (g / 2 - np.arange(g) - 0.5) * (cfg.size_px * cfg.resolution_m / g)
    return np.stack(np.meshgrid(centre, centre, indexing="ij"), axis=-1).astype(np.float32)


def _delta_order(cfg: ModelConfig) -> list[tuple[int, int]]:
    """(pose, previous pose in the chain) pairs: future outward from t0, then past outward from t0."""
    t0, t = cfg.horizon.t0_index, cfg.horizon.num_steps
    return [(k, k - 1) for k in range(t0 + 1, t)] + [(k, k + 1) for k in range(t0 - 1, -1, -1)]


def agents_to_targets(agents: Agents, cfg: ModelConfig) -> np.ndarray:
    """Assign each agent to the cell holding its t = 0 centre -> (target_channels, G, G) float32 grid."""
    g, t0, nd = cfg.grid, cfg.horizon.t0_index, cfg.num_deltas
    out = np.zeros((target_channels(cfg), g, g), np.float32)
    half = g * cfg.cell_m / 2
    centres = cell_centres(cfg)
    order = _delta_order(cfg)
    for i in range(len(agents)):
        if not agents.valid[i, t0]:
            continue
        x, y, h = agents.trajectory[i, t0]
        r, c = int(np.floor((half - x) / cfg.cell_m)), int(np.floor((half - y) / cfg.cell_m))
        if not (0 <= r < g and 0 <= c < g):
            continue
        cos_h, sin_h = np.cos(h), np.sin(h)
        d = centres[r, c] - (x, y)
        u, v = cos_h * d[0] + sin_h * d[1], -sin_h * d[0] + cos_h * d[1]
        half_l, half_w = agents.length[i] / 2, agents.width[i] / 2
        edges = np.array([half_l - u, half_w - v, half_l + u, half_w + v]) / EDGE_SCALE
        deltas = np.zeros((nd, 3), np.float32)
        dvalid = np.zeros(nd, np.float32)
        for j, (k, prev) in enumerate(order):
            if agents.valid[i, k] and agents.valid[i, prev]:
                dxy = agents.trajectory[i, k, :2] - agents.trajectory[i, prev, :2]
                deltas[j] = [(cos_h * dxy[0] + sin_h * dxy[1]) / DELTA_SCALE,
                             (-sin_h * dxy[0] + cos_h * dxy[1]) / DELTA_SCALE,
                             wrap_angle(agents.trajectory[i, k, 2] - agents.trajectory[i, prev, 2])]
                dvalid[j] = 1.0
        out[:, r, c] = np.concatenate([[1.0, cos_h, sin_h], edges, deltas.reshape(-1), dvalid, [agents.types[i]]])
    return out


def peak_cells(prob: np.ndarray, threshold: float, window: int = 3) -> np.ndarray:
    """(K, 2) (row, col) of cells at or above ``threshold`` that are the maximum of their window x window block."""
    if window <= 1:
        return np.argwhere(prob >= threshold)
    r = window // 2
    padded = np.pad(prob, r, constant_values=-1.0)
    g0, g1 = prob.shape
    neighbourhood = np.max(np.stack([padded[dr:dr + g0, dc:dc + g1] for dr in range(window)
                                     for dc in range(window)]), axis=0)
    return np.argwhere((prob >= threshold) & (prob >= neighbourhood))


def drivable_cells(map_raster: np.ndarray, cfg: ModelConfig) -> np.ndarray:
    """(G, G) bool: output cells holding at least one drivable pixel of the map raster (C_m, H, W)."""
    drivable = map_raster[MAP_CHANNELS.index("drivable")] > 0
    f = drivable.shape[0] // cfg.grid
    return drivable.reshape(cfg.grid, f, cfg.grid, f).any(axis=(1, 3))


def proposals_to_agents(out: np.ndarray, cfg: ModelConfig, threshold: float | None = None,
                        count: int | None = None, drivable: np.ndarray | None = None,
                        lanes: LaneIndex | None = None, type_counts: np.ndarray | None = None) -> Agents:
    """One decoder output (proposal_channels, G, G) -> agents, most probable first: peaks, overlap removal.

    Without ``count``, peaks at or above the existence threshold are kept. With ``count`` (the number of agents the
    caller asked for), the ``count`` most probable peaks above ``MIN_COUNT_PROB`` are kept instead; with
    ``type_counts`` as well ((NUM_TYPES,): how many of each agent type, summing to ``count``), the most probable
    peaks of each type, as many as asked for of it (fewer where the network proposes fewer). ``drivable``
    ((G, G) bool, :func:`drivable_cells`) ranks vehicle proposals off it by their score times the config's
    ``offroad_vehicle_scale``; ``lanes`` turns every vehicle and cyclist proposal within ``lane_snap_deg`` of a
    lane's heading onto it (:func:`align_to_lanes`, before overlap removal, so that the kept boxes and trajectories
    are the ones checked),
    and ranks vehicle proposals on a lane but more than ``lane_snap_deg`` off the heading of every lane holding them
    by their score times ``misaligned_vehicle_scale``. With a count, either prior only re-ranks vehicles among
    vehicles: how many of each type are kept follows the unscaled scores.
    """
    nd, t0 = cfg.num_deltas, cfg.horizon.t0_index
    prob = 1.0 / (1.0 + np.exp(-out[0]))
    floor = MIN_COUNT_PROB if count is not None else (cfg.existence_threshold if threshold is None else threshold)
    cells = peak_cells(prob, floor, cfg.peak_window)
    if len(cells) == 0:
        return Agents.empty(cfg.horizon.num_steps)
    p = out[:, cells[:, 0], cells[:, 1]].T  # (K, C)
    score = raw = prob[cells[:, 0], cells[:, 1]]
    heading = np.arctan2(p[:, 2], p[:, 1])
    front, left, back, right = (p[:, 3:7] * EDGE_SCALE).T
    length = np.clip(front + back, 0.3, 25.0)
    width = np.clip(left + right, 0.3, 5.0)
    cos_h, sin_h = np.cos(heading), np.sin(heading)
    u, v = (back - front) / 2, (right - left) / 2  # cell centre relative to the box centre, in the box frame
    centre = cell_centres(cfg)[cells[:, 0], cells[:, 1]] - np.stack([cos_h * u - sin_h * v, sin_h * u + cos_h * v], -1)
    deltas = p[:, 7:7 + 3 * nd].reshape(-1, nd, 3)
    types = np.argmax(p[:, 7 + 3 * nd:], axis=1)
    if drivable is not None and cfg.offroad_vehicle_scale != 1.0:
        offroad = (types == int(AgentType.VEHICLE)) & ~drivable[cells[:, 0], cells[:, 1]]
        score = np.where(offroad, score * cfg.offroad_vehicle_scale, score)
    if lanes is not None and len(lanes) and cfg.misaligned_vehicle_scale != 1.0:
        q = lanes.query(centre, heading)
        across = (types == int(AgentType.VEHICLE)) & q["on_lane"] & (q["heading_gap"] > np.deg2rad(cfg.lane_snap_deg))
        score = np.where(across, score * cfg.misaligned_vehicle_scale, score)
    traj = np.zeros((len(cells), cfg.horizon.num_steps, 3), np.float32)
    traj[:, t0, :2], traj[:, t0, 2] = centre, heading
    for j, (k, prev) in enumerate(_delta_order(cfg)):
        dx, dy = deltas[:, j, 0] * DELTA_SCALE, deltas[:, j, 1] * DELTA_SCALE
        traj[:, k, 0] = traj[:, prev, 0] + cos_h * dx - sin_h * dy
        traj[:, k, 1] = traj[:, prev, 1] + sin_h * dx + cos_h * dy
        traj[:, k, 2] = wrap_angle(traj[:, prev, 2] + deltas[:, j, 2])
    if lanes is not None and len(lanes) and cfg.lane_snap_deg > 0:
        traj = align_to_lanes(traj, lanes, t0, np.deg2rad(cfg.lane_snap_deg),
                              only=types != int(AgentType.PEDESTRIAN))
    quota = (types, np.asarray(type_counts)) if count is not None and type_counts is not None else None
    keep = remove_overlaps(traj[:, t0], length, width, score, cfg.overlap_scale,
                           other_poses=np.delete(traj, t0, axis=1) if cfg.trajectory_overlap else None, quota=quota)
    keep = keep[np.argsort(-score[keep], kind="stable")]
    if count is not None and type_counts is None and not np.array_equal(score, raw):
        # The priors re-rank vehicles among vehicles: the type mix of the count asked for stays the network's, so a
        # demoted vehicle gives its place to another vehicle, not to a pedestrian.
        first = keep[np.argsort(-raw[keep], kind="stable")][:count]
        quota = np.bincount(types[first], minlength=NUM_TYPES)
        chosen = np.concatenate([keep[types[keep] == t][:quota[t]] for t in range(NUM_TYPES)])
        keep = keep[np.isin(keep, chosen)]
    keep = keep[:count]
    traj = traj[keep]
    velocity = np.gradient(traj[:, :, :2], cfg.horizon.step_s, axis=1) if cfg.horizon.num_steps > 1 \
        else np.zeros((len(keep), 1, 2))
    return Agents(types=types[keep], length=length[keep], width=width[keep], trajectory=traj, velocity=velocity,
                  valid=np.ones(traj.shape[:2], bool))


def align_to_lanes(traj: np.ndarray, lanes: LaneIndex, t0: int, max_dev_rad: float,
                   only: np.ndarray | None = None) -> np.ndarray:
    """Trajectories (K, T, 3) with each one whose t = 0 pose lies on a lane within ``max_dev_rad`` of that lane's
    heading turned onto the lane heading, the whole trajectory rotated about its t = 0 centre; with ``only`` ((K,)
    bool), just those rows.

    The decoder's heading error (a few degrees) is the main part of its heading MMD on lane-following traffic; on maps
    unlike its training maps it is often tens of degrees, while logged vehicles almost never stand across a lane.
    Proposals off the lanes (parked cars) or beyond the angle are left as decoded. The decoder calls it for vehicles
    and cyclists only: a pedestrian on a lane is crossing it, not following it.
    """
    if len(traj) == 0:
        return traj
    q = lanes.query(traj[:, t0, :2], traj[:, t0, 2])
    turn = q["on_lane"] & (np.abs(q["heading_dev"]) <= max_dev_rad)
    if only is not None:
        turn &= only
    dev = np.where(turn, q["heading_dev"], 0.0)
    c, s = np.cos(-dev)[:, None], np.sin(-dev)[:, None]
    out = traj.copy()
    rel = traj[:, :, :2] - traj[:, t0:t0 + 1, :2]
    out[:, :, 0] = traj[:, t0:t0 + 1, 0] + c * rel[..., 0] - s * rel[..., 1]
    out[:, :, 1] = traj[:, t0:t0 + 1, 1] + s * rel[..., 0] + c * rel[..., 1]
    out[:, :, 2] = wrap_angle(traj[:, :, 2] - dev[:, None])
    return out


def overlap_matrix(pose: np.ndarray, length: np.ndarray, width: np.ndarray, scale: float = 1.0,
                   other_poses: np.ndarray | None = None) -> np.ndarray:
    """(K, K) bool: which of K boxes (poses (K, 3)) overlap when scaled by ``scale``; with ``other_poses`` ((K, T, 3):
    the rest of each trajectory), also which overlap at their own size at any common step."""
    boxes = np.concatenate([pose, length[:, None] * scale, width[:, None] * scale], axis=1)
    hits = boxes_overlap(boxes, boxes)
    if other_poses is not None:
        size = np.stack([length, width], axis=1)
        for t in range(other_poses.shape[1]):
            at_t = np.concatenate([other_poses[:, t], size], axis=1)
            hits |= boxes_overlap(at_t, at_t)
    return hits


def remove_overlaps(pose: np.ndarray, length: np.ndarray, width: np.ndarray, score: np.ndarray,
                    scale: float = 1.0, other_poses: np.ndarray | None = None,
                    quota: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Indices of boxes kept by greedy overlap removal (most probable first), boxes scaled by ``scale``; with
    ``other_poses`` ((K, T, 3): the rest of each trajectory), boxes at their own size that overlap at any common
    step count too. With ``quota`` ((K,) type of each box, (NUM_TYPES,) how many of each type to keep), a box of a
    type already full is passed over and blocks nothing: a pedestrian nobody asked for must not remove a vehicle."""
    order = np.argsort(-score)
    hits = overlap_matrix(pose[order], length[order], width[order], scale,
                          None if other_poses is None else other_poses[order])
    blocked = np.zeros(len(order), bool)
    left = None if quota is None else quota[1].astype(np.int64).copy()
    kept: list[int] = []
    for i in range(len(order)):
        if blocked[i] or (left is not None and left[quota[0][order[i]]] <= 0):
            continue
        kept.append(i)
        blocked |= hits[i]
        if left is not None:
            left[quota[0][order[i]]] -= 1
    return order[kept]
