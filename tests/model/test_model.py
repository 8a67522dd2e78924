"""The Scenario Diffusion model: box encoding, tokens, EDM, overfitting, seeding, checkpoints, CLI errors."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from sd_sim_plugin.cli import main
from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.model.boxes import agents_to_targets, proposals_to_agents
from sd_sim_plugin.model.cache import agents_in_view, build_arrays
from sd_sim_plugin.model.checkpoint import WEIGHT_FILES, load_config, save_config
from sd_sim_plugin.model.config import ModelConfig
from sd_sim_plugin.model.edm import (
    SOLVERS,
    classifier_free_guidance,
    karras_sigmas,
    loss_weight,
    preconditioning,
    sample,
)
from sd_sim_plugin.model.pipeline import ScenarioDiffusionGenerator
from sd_sim_plugin.model.tokens import UNSET, TokenLayout, agent_token_features, drop_tokens, global_token_features
from sd_sim_plugin.model.train import (
    TrainOptions,
    decode_targets,
    reconstruction_scores,
    train_autoencoder,
    train_diffusion,
)
from sd_sim_plugin.raster.bev import rasterise_map
from sd_sim_plugin.scene.handedness import mirror_token
from sd_sim_plugin.scene.tokens import tokens_from_agents
from sd_sim_plugin.scene.types import Agents, AgentType, Horizon

CHECKPOINTS = Path(__file__).resolve().parents[2] / "checkpoints"


def test_targets_decode_back_to_the_same_agents(road_scenes, tiny_config):
    """Cell targets -> proposals -> agents reproduces poses, sizes, types and trajectories."""
    cfg, t0 = tiny_config, tiny_config.horizon.t0_index
    for scene in road_scenes:
        truth = agents_in_view(scene, cfg)
        [got] = decode_targets(agents_to_targets(truth, cfg)[None], cfg)
        assert len(got) == len(truth)
        order = [int(np.argmin(np.linalg.norm(truth.trajectory[:, t0, :2] - p, axis=1)))
                 for p in got.trajectory[:, t0, :2]]
        assert sorted(order) == list(range(len(truth)))
        ref = truth.select(np.array(order))
        np.testing.assert_allclose(got.trajectory[..., :2], ref.trajectory[..., :2], atol=0.02)
        np.testing.assert_allclose(got.length, ref.length, atol=0.01)
        np.testing.assert_allclose(got.width, ref.width, atol=0.01)
        np.testing.assert_array_equal(got.types, ref.types)
        np.testing.assert_allclose(got.velocity[:, t0], ref.velocity[:, t0], atol=0.05)


def test_duplicate_boxes_are_removed(tiny_config):
    """Two strong neighbouring cells describing the same car give one agent after overlap removal."""
    cfg = tiny_config
    out = np.zeros((7 + 3 * cfg.num_deltas + 3, cfg.grid, cfg.grid), np.float32)
    out[0] = -10.0
    out[0, 10, 10], out[0, 10, 11] = 5.0, 3.0
    out[1] = 1.0  # heading 0
    out[3:7] = 0.6  # 2.4 m to every edge: a 4.8 m x 4.8 m box, overlapping its neighbour
    assert len(proposals_to_agents(out, cfg)) == 1


def test_trajectory_overlap_removes_proposals_whose_futures_run_into_likelier_ones(tiny_config):
    """Two cars 10 m apart at t = 0, the weaker one driving into the stronger one: both kept with overlap removal at
    t = 0 only, the stronger one alone with ``trajectory_overlap``, even when two agents are asked for."""
    cfg = tiny_config
    out = np.zeros((7 + 3 * cfg.num_deltas + 3, cfg.grid, cfg.grid), np.float32)
    out[0] = -10.0
    out[0, 10, 16], out[0, 14, 16] = 5.0, 3.0  # rows 10 and 14: 10 m apart along x
    out[1], out[3:7] = 1.0, 0.5  # heading +x, 4 m x 4 m boxes
    out[7, 14, 16] = 1.0  # the rear one moves 10 m forward in its first future step: onto the front one
    out[7 + 3 * cfg.num_deltas] = 5.0  # vehicles
    assert len(proposals_to_agents(out, cfg)) == 2
    for count in (None, 2):
        [kept] = proposals_to_agents(out, replace(cfg, trajectory_overlap=True), count=count).trajectory[:, 2, :1]
        assert kept[0] > 10  # row 10 (x 13.75 m), not row 14 (x 3.75 m): the stronger one
    out[7, 14, 16] = 0.2  # 2 m forward: the two boxes stay apart
    assert len(proposals_to_agents(out, replace(cfg, trajectory_overlap=True))) == 2


def test_offroad_vehicle_prior_reranks_vehicles_only(tiny_config):
    """With a requested count, a likelier vehicle off the drivable area loses its place to one on it when the
    off-road scale is below 1; pedestrians off it keep theirs; scale 1 leaves the ranking alone."""
    from sd_sim_plugin.model.boxes import drivable_cells
    from sd_sim_plugin.raster.bev import MAP_CHANNELS

    cfg = tiny_config
    out = np.zeros((7 + 3 * cfg.num_deltas + 3, cfg.grid, cfg.grid), np.float32)
    out[0] = -10.0
    out[0, 2, 2], out[0, 20, 20] = 5.0, 3.0  # the stronger proposal lies off the road
    out[1], out[3:7] = 1.0, 0.5
    out[7 + 3 * cfg.num_deltas] = 5.0  # vehicle logits
    raster = np.zeros((len(MAP_CHANNELS), cfg.size_px, cfg.size_px), np.float32)
    f = cfg.size_px // cfg.grid
    raster[MAP_CHANNELS.index("drivable"), 18 * f:22 * f, :] = 1.0  # a road across rows 18-21
    drivable = drivable_cells(raster, cfg)
    assert drivable[20, 20] and not drivable[2, 2]

    def kept_cell_row(scale: float) -> float:
        agents = proposals_to_agents(out, replace(cfg, offroad_vehicle_scale=scale), count=1, drivable=drivable)
        return agents.trajectory[0, cfg.horizon.t0_index, 0]  # ego-frame x: row 2 is far ahead, row 20 behind

    assert kept_cell_row(1.0) > kept_cell_row(0.01)
    out[7 + 3 * cfg.num_deltas], out[8 + 3 * cfg.num_deltas] = 0.0, 5.0  # both pedestrians now
    assert kept_cell_row(0.01) == kept_cell_row(1.0)


def test_type_counts_keep_the_most_probable_peaks_of_each_type(tiny_config):
    """Asked for one vehicle and two pedestrians, decoding keeps the strongest vehicle and the two strongest
    pedestrians, though a second vehicle is likelier than both pedestrians; fewer where fewer are proposed; a
    proposal of a type not asked for removes nothing."""
    cfg = tiny_config
    out = np.zeros((7 + 3 * cfg.num_deltas + 3, cfg.grid, cfg.grid), np.float32)
    out[0] = -10.0
    cells = {(4, 4): (6.0, 0), (4, 12): (5.0, 0), (12, 4): (3.0, 1), (12, 12): (2.0, 1), (20, 20): (1.0, 1)}
    for (r, c), (logit, agent_type) in cells.items():
        out[0, r, c] = logit
        out[7 + 3 * cfg.num_deltas + agent_type, r, c] = 5.0
    out[1], out[3:7] = 1.0, 0.5

    def kept(type_counts):
        a = proposals_to_agents(out, cfg, count=int(sum(type_counts)), type_counts=np.array(type_counts))
        return sorted(zip(a.types.tolist(), np.round(a.trajectory[:, cfg.horizon.t0_index, 1]).tolist()))

    y = {col: round(cfg.grid * cfg.cell_m / 2 - (col + 0.5) * cfg.cell_m) for col in (4, 12, 20)}
    assert proposals_to_agents(out, cfg, count=3).types.tolist() == [0, 0, 1]  # by probability alone
    assert kept([1, 2, 0]) == sorted([(0, y[4]), (1, y[4]), (1, y[12])])
    assert kept([0, 3, 0]) == sorted([(1, y[4]), (1, y[12]), (1, y[20])])
    assert kept([3, 0, 0]) == sorted([(0, y[4]), (0, y[12])])  # two vehicle peaks: no pedestrian takes the third
    # a likelier pedestrian overlapping the second vehicle removes it, unless no pedestrian is asked for
    out[0, 4, 13], out[7 + 3 * cfg.num_deltas + 1, 4, 13] = 5.5, 5.0
    assert proposals_to_agents(out, cfg, count=2).types.tolist() == [0, 1]
    assert kept([2, 0, 0]) == sorted([(0, y[4]), (0, y[12])])


def test_misaligned_vehicle_prior_prefers_vehicles_along_their_lane(tiny_config):
    """With a requested count, a likelier vehicle standing across a lane loses its place to one along a lane when the
    misaligned scale is below 1; off the lanes, or at scale 1, the ranking is left alone."""
    from sd_sim_plugin.scene.geometry import LaneIndex
    from sd_sim_plugin.scene.types import AgentType, MapGeometry

    cfg = tiny_config
    out = np.zeros((7 + 3 * cfg.num_deltas + 3, cfg.grid, cfg.grid), np.float32)
    out[0] = -10.0
    out[0, 12, 16], out[0, 20, 16] = 5.0, 3.0  # rows 12 and 20: 10 m ahead of the ego and 10 m behind it
    out[3:7] = 0.5
    out[1, 20, 16] = 1.0  # the weaker one heads along +x, like the lane
    out[2, 12, 16] = 1.0  # the stronger one heads along +y: across the lane
    out[7 + 3 * cfg.num_deltas] = 5.0  # vehicle logits
    road = MapGeometry(lane_ids=["road"], lane_centrelines=[np.array([[-40.0, 0.0], [40.0, 0.0]])],
                       lane_widths=np.array([30.0]))
    lanes = LaneIndex(road)

    def kept_x(scale: float, index: LaneIndex) -> float:
        agents = proposals_to_agents(out, replace(cfg, misaligned_vehicle_scale=scale), count=1, lanes=index)
        return agents.trajectory[0, cfg.horizon.t0_index, 0]

    assert kept_x(1.0, lanes) > 0 > kept_x(0.0, lanes)  # scale 0: the one along the lane
    assert kept_x(0.99, lanes) > 0  # a mild prior: 0.99 x 0.993 still beats 0.953
    out[7 + 3 * cfg.num_deltas + 1, 4, 16], out[0, 4, 16] = 10.0, 4.0  # a pedestrian, between the two in score
    agents = proposals_to_agents(out, replace(cfg, misaligned_vehicle_scale=0.0), count=1, lanes=lanes)
    assert list(agents.types) == [int(AgentType.VEHICLE)] and agents.trajectory[0, 2, 0] < 0  # a vehicle's place
    out[0, 4, 16] = -10.0
    far = LaneIndex(MapGeometry(lane_ids=["far"], lane_centrelines=[np.array([[-40.0, 200.0], [40.0, 200.0]])],
                                lane_widths=np.array([3.5])))
    assert kept_x(0.0, far) > 0  # on no lane: nothing to stand across
    with pytest.raises(ValueError, match="lane_snap_deg > 0"):
        replace(cfg, misaligned_vehicle_scale=0.5, lane_snap_deg=0.0)


def test_lane_alignment_turns_vehicles_within_its_angle_and_never_pedestrians(tiny_config):
    """A vehicle 60 degrees off its lane is turned onto it (its whole trajectory, about its t = 0 centre) with
    ``lane_snap_deg`` 90 or 180 but left as decoded with 20; a pedestrian on the lane is never turned, and a vehicle
    heading against a one-way lane is turned round only at 180."""
    from sd_sim_plugin.scene.geometry import LaneIndex
    from sd_sim_plugin.scene.types import AgentType, MapGeometry

    cfg = tiny_config
    out = np.zeros((7 + 3 * cfg.num_deltas + 3, cfg.grid, cfg.grid), np.float32)
    out[0] = -10.0
    out[3:7] = 0.5
    cells = {(8, 16): 60.0, (24, 16): 60.0, (12, 16): 170.0}  # rows 8, 12, 24: along the lane (x), 10+ m apart
    for (r, c), deg in cells.items():
        out[0, r, c] = 5.0
        out[1, r, c], out[2, r, c] = np.cos(np.deg2rad(deg)), np.sin(np.deg2rad(deg))
        out[7:7 + 3 * cfg.num_deltas:3, r, c] = 1.0  # every pose 1 unit further along the decoded heading
        out[7 + 3 * cfg.num_deltas, r, c] = 5.0
    out[7 + 3 * cfg.num_deltas + 1, 24, 16] = 10.0  # that one is a pedestrian
    road = MapGeometry(lane_ids=["road"], lane_centrelines=[np.array([[-40.0, 0.0], [40.0, 0.0]])],
                       lane_widths=np.array([30.0]))
    lanes, t0 = LaneIndex(road), cfg.horizon.t0_index

    def headings(snap: float) -> list[tuple[int, int]]:
        """(type, t = 0 heading in degrees) from front (largest x) to back."""
        agents = proposals_to_agents(out, replace(cfg, lane_snap_deg=snap), lanes=lanes)
        traj = agents.trajectory
        step = traj[:, -1, :2] - traj[:, t0, :2]  # rotated about t = 0: the poses still lie along its heading
        np.testing.assert_allclose(np.arctan2(step[:, 1], step[:, 0]), traj[:, t0, 2], atol=1e-4)
        order = np.argsort(-traj[:, t0, 0])
        return [(int(agents.types[i]), round(float(np.rad2deg(traj[i, t0, 2])))) for i in order]

    vehicle, ped = int(AgentType.VEHICLE), int(AgentType.PEDESTRIAN)
    assert headings(0.0) == headings(20.0) == [(vehicle, 60), (vehicle, 170), (ped, 60)]
    assert headings(90.0) == [(vehicle, 0), (vehicle, 170), (ped, 60)]
    assert headings(180.0) == [(vehicle, 0), (vehicle, 0), (ped, 60)]
    with pytest.raises(ValueError, match=r"lane_snap_deg \(200\) must be in \[0, 180\]"):
        replace(cfg, lane_snap_deg=200)
    with pytest.raises(ValueError, match=r"lane_snap_deg \('wide'\) must be a number"):
        replace(cfg, lane_snap_deg="wide")  # as a hand-edited config.json could say


def test_token_dropout_counts_the_dropped_agents():
    """The global token equals the number of dropped tokens (or UNSET), and 40% of samples keep everything."""
    rng = np.random.default_rng(0)
    kept_all = 0
    for _ in range(2000):
        keep, count = drop_tokens(10, rng)
        assert count == UNSET or count == 10 - keep.sum()
        kept_all += keep.all()
    assert 0.38 < kept_all / 2000 < 0.55  # 40% forced, plus draws that happen to drop nothing
    layout = TokenLayout()
    feats = global_token_features(np.array([UNSET, 0, 3, 500]), layout, np.array([True, False, True, True]))
    assert feats[0, layout.max_count + 1] == 1 and feats[1, 0] == 1 and feats[2, 3] == 1 and feats[3, 40] == 1
    np.testing.assert_array_equal(feats[:, -1], [1, 0, 1, 1])  # centred on the ego
    old = global_token_features(np.array([2]), replace(layout, global_dim=layout.max_count + 3))  # pre-flag layout
    assert old.shape == (1, layout.max_count + 3) and old[0, 2] == 1 and 0 < old[0, -1] < 1


def test_edm_preconditioning_and_sampler():
    """c_skip -> 1 and c_out -> 0 as sigma -> 0; lambda = 1 / c_out^2; the ODE lands on a perfect denoiser's target."""
    sigma = torch.tensor([1e-4, 1.0, 80.0])
    c_skip, c_out, c_in, c_noise = preconditioning(sigma)
    assert c_skip[0] == pytest.approx(1.0, abs=1e-6) and c_out[0] == pytest.approx(0.0, abs=1e-3)
    assert c_skip[1] == pytest.approx(0.5) and c_in[1] == pytest.approx(2 ** -0.5)
    torch.testing.assert_close(loss_weight(sigma), 1 / c_out ** 2)
    assert c_noise[1] == pytest.approx(0.0)
    sigmas = karras_sigmas(10, 0.002, 80.0)
    assert sigmas[0] == pytest.approx(80.0) and sigmas[-1] == 0 and torch.all(sigmas[:-1] > sigmas[1:])
    target = torch.randn(2, 4, 8, 8)
    for solver in SOLVERS:
        torch.testing.assert_close(sample(lambda x, s: target, torch.randn(2, 4, 8, 8), sigmas, solver), target)


def test_classifier_free_guidance_combines_the_two_halves_inside_its_interval_only():
    """Inside (low, high]: D_u + w (D_c - D_u) from the doubled batch (conditional half first); outside: D_c alone."""
    calls = []

    def conditional(x, s):
        calls.append(len(x))
        return x + 1

    def paired(x, s):
        calls.append(len(x))
        half = len(x) // 2
        return torch.cat([x[:half] + 1, x[half:] - 1])

    guided = classifier_free_guidance(conditional, paired, 3.0, (1.0, 10.0))
    x = torch.zeros(2, 3)
    torch.testing.assert_close(guided(x, torch.full((2,), 5.0)), torch.full((2, 3), -1.0 + 3.0 * 2.0))
    torch.testing.assert_close(guided(x, torch.full((2,), 10.0)), torch.full((2, 3), 5.0))
    for outside in (20.0, 1.0, 0.5):
        torch.testing.assert_close(guided(x, torch.full((2,), outside)), x + 1)
    assert calls == [4, 4, 2, 2, 2]
    with pytest.raises(ValueError, match="guidance_interval"):
        ModelConfig(guidance_interval=(10.0, 1.0))
    with pytest.raises(ValueError, match="guidance_scale"):
        ModelConfig(guidance_scale=-1.0)


def test_dpm_solver_reaches_the_data_distribution_in_fewer_steps_than_euler():
    """With the exact denoiser of N(0, 1) data, 10 DPM-Solver++(2M) steps end nearer unit spread than 10 Euler steps,
    and 50 steps of it land within 2%."""
    exact = lambda x, s: x / (1 + s.view(-1, 1, 1, 1) ** 2)
    noise = torch.randn(256, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    spread = {(solver, n): sample(exact, noise, karras_sigmas(n, 0.002, 80.0), solver).std().item()
              for solver in ("euler", "dpmpp2m") for n in (10, 50)}
    assert abs(spread["dpmpp2m", 10] - 1) < abs(spread["euler", 10] - 1)
    assert spread["dpmpp2m", 50] == pytest.approx(1.0, abs=0.02)
    with pytest.raises(ValueError, match="unknown solver"):
        sample(exact, noise, karras_sigmas(2, 0.002, 80.0), "rk4")


def test_stochastic_solver_samples_a_two_mode_distribution_and_is_seeded():
    """With the exact denoiser of a mixture of N(-2, 0.5^2) and N(2, 0.5^2), 100 DPM-Solver++(2M) SDE steps give
    both modes with their spread; the same generator seed gives the same samples, another seed others."""
    def exact(x, s):
        v = 0.25 + s.view(-1, 1) ** 2
        right = torch.sigmoid(4 * x / v)  # posterior weight of the +2 mode
        return right * (2 + 0.25 / v * (x - 2)) + (1 - right) * (-2 + 0.25 / v * (x + 2))

    noise = torch.randn(20000, 1, generator=torch.Generator().manual_seed(1))
    sigmas = karras_sigmas(100, 0.002, 80.0)
    z = sample(exact, noise, sigmas, "dpmpp2m_sde", generator=torch.Generator().manual_seed(2))
    assert z.abs().mean().item() == pytest.approx(2.0, abs=0.03)
    assert z.abs().std().item() == pytest.approx(0.5, abs=0.03)
    assert (z > 0).float().mean().item() == pytest.approx(0.5, abs=0.02)
    few = karras_sigmas(6, 0.002, 80.0)
    again = sample(exact, noise[:8], few, "dpmpp2m_sde", generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(again, sample(exact, noise[:8], few, "dpmpp2m_sde",
                                             generator=torch.Generator().manual_seed(2)))
    assert not torch.equal(again, sample(exact, noise[:8], few, "dpmpp2m_sde",
                                         generator=torch.Generator().manual_seed(3)))


def test_count_model_recovers_a_linear_count_and_drives_unset_generation(tiny_config, trained, road_scenes):
    """Least squares on map statistics recovers count = 2 + 10 x drivable share; with density unset, generation draws
    a seeded count around the model's expectation and adds at most that many agents."""
    from sd_sim_plugin.model.cache import TrainingArrays
    from sd_sim_plugin.model.count import expected_count, fit_count_model

    rng = np.random.default_rng(0)
    maps = (rng.random((200, 3, 8, 8)) < rng.random((200, 1, 1, 1))).astype(np.float32)
    counts = np.rint(2 + 10 * maps[:, 0].mean(axis=(1, 2))).astype(np.int64)
    arrays = TrainingArrays(map=maps, agents=maps, targets=maps, tokens=np.zeros((200, 1, 1)), num_tokens=counts,
                            centre_is_ego=np.ones(200, bool), folder=Path("."))
    coef = fit_count_model(arrays)
    assert coef[0] == pytest.approx(2, abs=0.2) and coef[1] == pytest.approx(10, abs=0.5)
    assert np.abs(expected_count(coef, maps) - counts).max() < 0.6
    gen = ScenarioDiffusionGenerator.from_checkpoint(trained[0])
    gen.cfg = replace(gen.cfg, count_coefficients=(4.0,) + (0.0,) * gen.cfg.map_channels)
    scenes = gen.generate(road_scenes[2].map, seed=5, count=8)
    again = gen.generate(road_scenes[2].map, seed=5, count=8)
    extra = [s.meta["extra_agents"] for s in scenes]
    assert extra == [s.meta["extra_agents"] for s in again] and len(set(extra)) > 1  # seeded Poisson draws
    assert all(len(s.agents) <= s.meta["extra_agents"] for s in scenes)


def test_unet_timestep_is_scaled_noise_conditioning_and_old_configs_keep_their_recipe(tiny_config, tmp_path):
    """The U-Net gets ln(sigma)/4 * timestep_scale; a config.json written before the timestep, position and token
    raster fields existed loads as the recipe it was trained with (scale 1, neither extra input)."""
    from sd_sim_plugin.model.denoiser import LatentDenoiser

    cfg = replace(tiny_config, timestep_scale=250.0)
    net = LatentDenoiser(cfg).eval()
    seen = []
    net.unet.register_forward_pre_hook(lambda _m, args: seen.append(args[1].clone()))
    sigma = torch.tensor([0.5, 20.0])
    x = torch.zeros(2, cfg.latent_channels, cfg.latent_size, cfg.latent_size)
    tokens, mask = net.embed_tokens(torch.zeros(2, 1, cfg.tokens.agent_dim), torch.zeros(2, 1, dtype=torch.bool),
                                    torch.zeros(2, cfg.tokens.global_dim))
    with torch.no_grad():
        condition = net.spatial_condition(torch.zeros(2, cfg.map_channels, cfg.size_px, cfg.size_px),
                                          torch.zeros(2, 1, cfg.tokens.agent_dim), torch.zeros(2, 1, dtype=torch.bool))
        net(x, sigma, condition, tokens, mask)
    torch.testing.assert_close(seen[0], sigma.log() / 4 * 250.0)
    save_config(tmp_path, cfg)
    written = json.loads((tmp_path / "config.json").read_text())
    assert written["model"]["timestep_scale"] == 250.0 and load_config(tmp_path)[0] == cfg
    for key in ("timestep_scale", "position_features", "token_raster"):
        del written["model"][key]
    (tmp_path / "config.json").write_text(json.dumps(written))
    old = load_config(tmp_path)[0]
    assert (old.timestep_scale, old.position_features, old.token_raster) == (1.0, False, False)
    assert LatentDenoiser(old).unet.conv_in.in_channels == cfg.latent_channels + cfg.map_embed_channels


def test_token_raster_marks_each_token_in_its_output_cell(road_scenes, tiny_config):
    """Drawn token presence lands exactly in the cells that hold those agents' centres in the training targets, and
    the cell positions given to the U-Net are the token position features of the cell centres."""
    from sd_sim_plugin.model.denoiser import latent_position_grid, token_raster
    from sd_sim_plugin.model.tokens import POSITION_DIM, TokenLayout, agent_token_features
    from sd_sim_plugin.scene.tokens import AgentToken

    cfg = tiny_config
    for scene in road_scenes:
        truth = agents_in_view(scene, cfg)
        feats = torch.from_numpy(agent_token_features(tokens_from_agents(truth, scene.horizon), cfg.tokens))[None]
        raster = token_raster(feats, torch.ones(feats.shape[:2], dtype=torch.bool), cfg)
        assert raster.shape[-1] == cfg.latent_size
        presence = torch.nn.functional.pixel_shuffle(raster, cfg.grid // cfg.latent_size)[0, 0].numpy()
        np.testing.assert_array_equal(presence > 0.5, agents_to_targets(truth, cfg)[0] > 0.5)
    grid = latent_position_grid(cfg)
    corner = (cfg.size_px * cfg.resolution_m / 2) * (1 - 1 / cfg.latent_size)  # front-left latent cell centre
    front_left = AgentToken(x=corner, y=corner, heading=0.0, length=4.0, width=2.0, speed=0.0, future_speed=0.0)
    expected = agent_token_features([front_left], TokenLayout())[0, :POSITION_DIM]
    np.testing.assert_allclose(grid[:, 0, 0].numpy(), expected, atol=1e-6)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, road_scenes, tiny_config):
    """A tiny model trained on four scenes (autoencoder to convergence, a few diffusion steps)."""
    torch.set_num_threads(1)  # CPU time of one thread is what the 60 s budget means on a shared machine
    root = tmp_path_factory.mktemp("model")
    arrays = build_arrays(road_scenes[:4], tiny_config, root / "cache")
    start = time.process_time()
    train_autoencoder(arrays, None, root / "ckpt", TrainOptions(steps=400, batch_size=4, lr=4e-3, eval_every=1000,
                                                                progress=False), tiny_config)
    ae_seconds = time.process_time() - start
    train_diffusion(arrays, None, root / "ckpt", TrainOptions(steps=20, batch_size=4, eval_every=1000,
                                                              progress=False))
    return root / "ckpt", arrays, ae_seconds


def test_tiny_model_overfits_and_reconstructs(trained, tiny_config):
    """The autoencoder overfits four scenes in under 60 s of CPU time and reconstructs their agents with F1 >= 0.9."""
    ckpt, arrays, seconds = trained
    gen = ScenarioDiffusionGenerator.from_checkpoint(ckpt)
    scores = reconstruction_scores(gen.autoencoder, arrays, np.arange(len(arrays)), tiny_config)
    assert seconds < 60
    assert scores["f1"] >= 0.9, scores
    assert scores["centre_err_m"] < 0.5


def test_same_seed_same_scene(trained, road_scenes):
    """Generation is a function of the seed; the ego box stays free."""
    gen = ScenarioDiffusionGenerator.from_checkpoint(trained[0])
    scene = road_scenes[0]
    tokens = tokens_from_agents(scene.others, scene.horizon)[:2]
    a = gen.generate(scene.map, agent_tokens=tokens, density=3, seed=7, count=3)
    b = gen.generate(scene.map, agent_tokens=tokens, density=3, seed=7, count=3)
    for x, y in zip(a, b):
        assert x.ego_index == -1 and x.horizon == gen.horizon
        np.testing.assert_array_equal(x.agents.trajectory, y.agents.trajectory)
        assert np.all(np.abs(x.agents.trajectory[:, 2, :2]).max(axis=1, initial=9) > 1.0)
    g = torch.Generator().manual_seed(7)
    first = torch.randn(3, generator=g)
    assert not torch.equal(first, torch.randn(3, generator=torch.Generator().manual_seed(8)))


def test_lanes_reach_the_decoder_only_with_lane_alignment(trained, road_scenes, monkeypatch):
    """``generate`` hands every scene's lanes to the decoder (alignment before overlap removal, and the lane prior)
    when ``lane_snap_deg`` is above 0, else none."""
    from sd_sim_plugin.model import pipeline
    from sd_sim_plugin.scene.geometry import LaneIndex

    seen = []
    decode = pipeline.proposals_to_agents
    monkeypatch.setattr(pipeline, "proposals_to_agents",
                        lambda *a, **kw: (seen.append(kw.get("lanes")), decode(*a, **kw))[1])
    gen = ScenarioDiffusionGenerator.from_checkpoint(trained[0])
    gen.generate(road_scenes[0].map, density=3, seed=1, count=2)
    assert len(seen) == 2 and all(isinstance(x, LaneIndex) and len(x) for x in seen)
    gen.cfg = replace(gen.cfg, lane_snap_deg=0.0)
    seen.clear()
    gen.generate(road_scenes[0].map, density=3, seed=1, count=2)
    assert seen == [None, None]


def test_trajectory_overlap_leaves_generated_trajectories_apart(trained, road_scenes):
    """With ``trajectory_overlap``, no generated agent's box meets another's at any step, lane alignment and agent
    tokens included (tokens may overlap each other: the caller placed them); without it, some do on these maps."""
    from sd_sim_plugin.metrics.collision import collision_flags

    gen = ScenarioDiffusionGenerator.from_checkpoint(trained[0])
    hits = {}
    for rule in (False, True):
        gen.cfg = replace(gen.cfg, trajectory_overlap=rule)
        hits[rule] = 0
        for i, scene in enumerate(road_scenes):
            tokens = tokens_from_agents(agents_in_view(scene, gen.cfg), scene.horizon)[:1]
            for out in gen.generate(scene.map, agent_tokens=tokens, density=12, seed=i, count=3):
                hits[rule] += int(collision_flags(out.agents, out.horizon)["trajectory"].sum())
    assert hits[True] == 0 < hits[False]


def test_checkpoint_round_trip(trained, road_scenes, tmp_path):
    """Weights and config survive a save/load round trip: the loaded model generates the same scenes."""
    ckpt = trained[0]
    gen = ScenarioDiffusionGenerator.from_checkpoint(ckpt)
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ["config.json", *WEIGHT_FILES.values()]:
        (copy / name).write_bytes((ckpt / name).read_bytes())
    again = ScenarioDiffusionGenerator.from_checkpoint(copy)
    for (k, v), (k2, v2) in zip(gen.denoiser.state_dict().items(), again.denoiser.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    assert load_config(copy)[0] == gen.cfg
    s1 = gen.generate(road_scenes[1].map, seed=3, count=2)
    s2 = again.generate(road_scenes[1].map, seed=3, count=2)
    for x, y in zip(s1, s2):
        np.testing.assert_array_equal(x.agents.trajectory, y.agents.trajectory)


def _copy_ckpt(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for name in ["config.json", *WEIGHT_FILES.values()]:
        (dst / name).write_bytes((src / name).read_bytes())
    return dst


def test_corrupt_or_mismatched_checkpoint_gives_one_clear_line(trained, tmp_path):
    """Truncated weights, a config for another architecture, a missing file or version -> SdSimError naming it."""
    ckpt = trained[0]
    broken = _copy_ckpt(ckpt, tmp_path / "broken")
    data = (broken / WEIGHT_FILES["denoiser"]).read_bytes()
    (broken / WEIGHT_FILES["denoiser"]).write_bytes(data[: len(data) // 3])
    with pytest.raises(SdSimError, match="denoiser.safetensors"):
        ScenarioDiffusionGenerator.from_checkpoint(broken)

    other = _copy_ckpt(ckpt, tmp_path / "other")
    cfg, record = load_config(other)
    save_config(other, __import__("dataclasses").replace(cfg, ae_width=48), record)
    with pytest.raises(SdSimError, match="autoencoder.safetensors: weights do not match"):
        ScenarioDiffusionGenerator.from_checkpoint(other)

    for key, value, says in (("sampler", "rk4", "sampler 'rk4' is not one of"),
                              ("unet_channels", [12, 24], r"unet_channels \[12, 24\] must be two positive multiples"),
                              ("ego_flag", "yes", r"ego_flag \('yes'\) must be true or false"),
                              ("trajectory_overlap", 1, r"trajectory_overlap \(1\) must be true or false"),
                              ("count_coefficients", [1.0, 2.0], "count_coefficients has 2 values")):
        edited = _copy_ckpt(ckpt, tmp_path / f"bad_{key}")
        text = json.loads((edited / "config.json").read_text())
        text["model"][key] = value
        (edited / "config.json").write_text(json.dumps(text))
        with pytest.raises(SdSimError, match=f"config.json: model config is incomplete or invalid.*{says}"):
            ScenarioDiffusionGenerator.from_checkpoint(edited)

    old = _copy_ckpt(ckpt, tmp_path / "old")
    text = json.loads((old / "config.json").read_text())
    text["format_version"] = 99
    (old / "config.json").write_text(json.dumps(text))
    with pytest.raises(SdSimError, match="format version 99"):
        ScenarioDiffusionGenerator.from_checkpoint(old)

    (old / "config.json").unlink()
    with pytest.raises(SdSimError, match="config.json: missing"):
        ScenarioDiffusionGenerator.from_checkpoint(old)
    with pytest.raises(SdSimError, match="no such checkpoint folder"):
        ScenarioDiffusionGenerator.from_checkpoint(tmp_path / "nowhere")


def test_fingerprint_follows_the_checkpoint_contents(trained, tmp_path):
    """Stored evaluation scenes are keyed by this: a retrained checkpoint in the same folder gets a new fingerprint."""
    from sd_sim_plugin.model.checkpoint import fingerprint

    copy = _copy_ckpt(trained[0], tmp_path / "copy")
    assert fingerprint(copy) == fingerprint(trained[0])
    weights = copy / WEIGHT_FILES["denoiser"]
    data = weights.read_bytes()
    weights.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    assert fingerprint(copy) != fingerprint(trained[0])
    changed = fingerprint(copy)
    (copy / "denoiser_1.safetensors").write_bytes(data)  # an ensemble's second denoiser counts too
    assert fingerprint(copy) != changed


def test_cli_reports_bad_checkpoint_and_map_in_one_line(tmp_path, capsys):
    """`sd-sim generate` with a missing checkpoint, a bad --map, --density, --refill, --draws or --selection exits 2
    with one line."""
    assert main(["generate", "--map", "pg:1", "--checkpoint", str(tmp_path / "none"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such checkpoint folder" in err[0]
    assert main(["generate", "--map", "mars:1", "--out", str(tmp_path)]) == 2
    assert "expected pg:SEED" in capsys.readouterr().err
    assert main(["generate", "--map", "pg:1", "--density", "bus=2", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown agent type 'bus'" in err[0]
    assert main(["generate", "--map", "pg:1", "--refill", "7", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refill_rounds (7) must be a whole number in [0, 3]" in err[0]
    assert main(["generate", "--map", "pg:1", "--draws", "0", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "draws_per_scene (0) must be a whole number in [1, 8]" in err[0]
    assert main(["generate", "--map", "pg:1", "--selection", "best", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "draw_selection 'best' is not one of most_typical, herding, herding_groups" in err[0]


def test_failed_stage_2_start_leaves_the_checkpoint_untouched(trained, tmp_path, capsys):
    """`sd-sim train --stage diffusion` on a folder with no scenes exits 2 with one line; config.json is unchanged."""
    ckpt = _copy_ckpt(trained[0], tmp_path / "ckpt")
    before = (ckpt / "config.json").read_bytes()
    assert main(["train", "--stage", "diffusion", "--data", str(tmp_path / "no_data"), "--out", str(ckpt)]) == 2
    assert "no such data folder" in capsys.readouterr().err
    assert (ckpt / "config.json").read_bytes() == before and not (tmp_path / "no_data").exists()


def test_tokens_appear_as_described_and_density_sets_the_count(trained, road_scenes):
    """Every agent token is in the scene at its pose and size; the global token adds that many agents at most."""
    gen = ScenarioDiffusionGenerator.from_checkpoint(trained[0])
    scene = road_scenes[4]
    tokens = tokens_from_agents(agents_in_view(scene, gen.cfg), scene.horizon)[:3]
    for density in (0, 2):
        for out in gen.generate(scene.map, agent_tokens=tokens, density=density, seed=1, count=2):
            a, t0 = out.agents, out.horizon.t0_index
            assert len(tokens) <= len(a) <= len(tokens) + density
            for tok in tokens:
                d = np.linalg.norm(a.trajectory[:, t0, :2] - (tok.x, tok.y), axis=1)
                k = int(np.argmin(d))
                assert d[k] < 1e-3 and abs(a.trajectory[k, t0, 2] - tok.heading) < 1e-3
                assert a.length[k] == pytest.approx(tok.length) and a.width[k] == pytest.approx(tok.width)


def test_per_type_density_sets_the_count_of_each_type(trained, road_scenes):
    """Asked for vehicles only, the scene has that many vehicles and nothing else; the global token still gets the
    total, so the sample is the same as for the plain number; asking for an unknown type is one clear error."""
    from sd_sim_plugin.scene.types import AgentType

    gen = ScenarioDiffusionGenerator.from_checkpoint(trained[0])
    scene = road_scenes[2]
    for n in (1, 3):
        typed = gen.generate(scene.map, density={AgentType.VEHICLE: n, AgentType.PEDESTRIAN: 0}, seed=4, count=2)
        plain = gen.generate(scene.map, density=n, seed=4, count=2)
        for t, p in zip(typed, plain):
            assert t.agents.types.tolist() == [int(AgentType.VEHICLE)] * n
            assert t.meta["density"] == {"vehicle": n, "pedestrian": 0} and p.meta["density"] == n
            if (p.agents.types == int(AgentType.VEHICLE)).all():  # same sample, same choice
                np.testing.assert_array_equal(t.agents.trajectory, p.agents.trajectory)
    with pytest.raises(SdSimError, match="unknown agent type 'truck'"):
        gen.generate(scene.map, density={"truck": 2})


def _box_agents(xs: list[float], types: list[int], y: float = 0.0) -> Agents:
    """Standing 4 m x 2 m agents along the x axis (5 poses, heading +x)."""
    n = len(xs)
    traj = np.zeros((n, 5, 3), np.float32)
    traj[:, :, 0] = np.asarray(xs, np.float32)[:, None]
    traj[:, :, 1] = y
    return Agents(types=types, length=np.full(n, 4.0, np.float32), width=np.full(n, 2.0, np.float32),
                  trajectory=traj, velocity=np.zeros((n, 5, 2), np.float32), valid=np.ones((n, 5), bool))


def test_refill_adds_only_new_agents_that_fit_each_types_shortfall(tiny_config):
    """A refill sampling's agents join the kept ones (which stay as they were) only where they are no rendering of a
    kept agent and overlap nothing, most probable first, and no more of a type than it lacks."""
    from sd_sim_plugin.model.pipeline import _add_agents, _shortfall

    vehicle, pedestrian = 0, 1
    kept = _box_agents([0.0, 20.0], [vehicle, vehicle])
    # a rendering of the first kept car (1 m off), one overlapping the second, then three that fit
    drawn = _box_agents([1.0, 22.5, -20.0, 40.0, 60.0], [vehicle, vehicle, vehicle, pedestrian, vehicle], y=0.5)
    missing = _shortfall(kept, 5, np.array([3, 1, 0]))
    assert missing.tolist() == [1, 1, 0]
    out = _add_agents(kept, drawn, missing, int(missing.sum()), tiny_config)
    np.testing.assert_array_equal(out.trajectory[:2], kept.trajectory)
    assert out.trajectory[2:, 2, 0].tolist() == [-20.0, 40.0]  # the car at 60 m was one car too many
    assert out.types.tolist() == [vehicle, vehicle, vehicle, pedestrian]
    total = _add_agents(kept, drawn, None, 2, tiny_config)  # a plain count: the two most probable that fit
    assert total.trajectory[2:, 2, 0].tolist() == [-20.0, 40.0]
    assert _shortfall(out, 4, None).tolist() == [0]


def test_refill_rounds_fill_a_short_scene_and_keep_its_first_sample(trained, road_scenes):
    """Asked for more agents than one sample yields, a refill round adds agents after the first sample's, which stay
    as they were, never more than asked for and none overlapping another; the same seed gives the same scene."""
    from sd_sim_plugin.scene.geometry import boxes_overlap

    scene = road_scenes[1]
    plain = ScenarioDiffusionGenerator.from_checkpoint(trained[0])
    refill = ScenarioDiffusionGenerator.from_checkpoint(trained[0], refill_rounds=2)
    for gen in (plain, refill):  # wide overlap margins: fewer proposals fit, as in dense scenes on unseen maps
        gen.cfg = replace(gen.cfg, overlap_scale=2.5)
    first = plain.generate(scene.map, density=300, seed=3, count=2)
    again = refill.generate(scene.map, density=300, seed=3, count=2)
    assert any(len(f.agents) < 300 for f in first)  # the case refilling is for
    assert sum(len(a.agents) for a in again) > sum(len(f.agents) for f in first)
    for f, a in zip(first, again):
        assert len(f.agents) <= len(a.agents) <= 300
        np.testing.assert_array_equal(a.agents.trajectory[: len(f.agents)], f.agents.trajectory)
        t0 = a.horizon.t0_index
        boxes = np.concatenate([a.agents.trajectory[:, t0], a.agents.length[:, None], a.agents.width[:, None]], 1)
        assert not (boxes_overlap(boxes, boxes) & ~np.eye(len(boxes), dtype=bool)).any()
    for a, b in zip(again, refill.generate(scene.map, density=300, seed=3, count=2)):
        np.testing.assert_array_equal(a.agents.trajectory, b.agents.trajectory)
    met = plain.generate(scene.map, density=1, seed=3)[0]  # a scene that got its count is not sampled again
    np.testing.assert_array_equal(refill.generate(scene.map, density=1, seed=3)[0].agents.trajectory,
                                  met.agents.trajectory)
    for bad in (7, 1.5, True):
        with pytest.raises(SdSimError, match=r"refill_rounds \(.*\) must be a whole number in \[0, 3\]"):
            ScenarioDiffusionGenerator.from_checkpoint(trained[0], refill_rounds=bad)


def test_most_typical_draw_is_the_one_nearest_the_others():
    """Minimum-Bayes-risk selection keeps the draw with the least summed MMD to the other draws: the middle of three
    shifted layouts, never an outlier or an empty draw; all empty gives the first."""
    from sd_sim_plugin.model.pipeline import most_typical_draw

    horizon = Horizon()  # 5 poses, as _box_agents draws
    draws = [_box_agents([0.0, 10.0, 20.0], [0, 0, 0], y=y) for y in (0.0, 3.0, 6.0)]
    empty = _box_agents([], [])
    far = _box_agents([0.0, 10.0, 20.0], [0, 0, 0], y=60.0)
    assert most_typical_draw(draws, horizon) == 1
    assert most_typical_draw([far, empty, *draws], horizon) == 3
    assert most_typical_draw([empty, empty], horizon) == 0
    assert most_typical_draw([empty, far], horizon) == 1


def test_herded_scene_spreads_over_the_pooled_draws_with_no_overlap():
    """Herding composes a scene nearer the pooled draws (kernel MMD of positions) than any one draw is, taking agents
    from both clusters of two one-sided draws; a car rendered by both draws at one place is taken once; quotas hold
    per type and vehicles choose first, so a pedestrian standing on a vehicle is the one left out."""
    from sd_sim_plugin.model.herding import herded_scene
    from sd_sim_plugin.scene.discrepancy import mmd

    horizon = Horizon()
    left = _box_agents([-30.0, -20.0, -10.0, 0.0], [0] * 4)
    right = _box_agents([0.0, 10.0, 20.0, 30.0], [0] * 4)  # the car at x = 0 is in both
    scene = herded_scene([left, right], horizon, np.array([4, 0, 0]), 1.15, along_trajectories=True)
    x = scene.trajectory[:, 2, 0]
    assert len(scene) == 4 and (x < 0).any() and (x > 0).any()
    pool = np.concatenate([left.trajectory[:, 2, :2], right.trajectory[:, 2, :2]])
    assert mmd(scene.trajectory[:, 2, :2], pool) < min(mmd(d.trajectory[:, 2, :2], pool) for d in (left, right))
    everything = herded_scene([left, right], horizon, np.array([20, 0, 0]), 1.15, along_trajectories=True)
    assert sorted(everything.trajectory[:, 2, 0]) == [-30.0, -20.0, -10.0, 0.0, 10.0, 20.0, 30.0]
    mixed = _box_agents([0.0, 20.0, 40.0], [1, 0, 0])  # the pedestrian stands where the other draw has a vehicle
    both = herded_scene([mixed, _box_agents([0.0], [0])], horizon, np.array([3, 1, 0]), 1.15, True)
    assert sorted(both.types.tolist()) == [0, 0, 0]
    one_each = herded_scene([mixed], horizon, np.array([1, 1, 0]), 1.15, True)
    assert sorted(one_each.types.tolist()) == [0, 1]
    assert len(herded_scene([_box_agents([], [])], horizon, np.array([3, 0, 0]), 1.15, True)) == 0


def test_herding_groups_keeps_a_queue_whole():
    """Vehicles of one draw chained within the link distance form one group; herding by groups takes a queue whole
    or not at all, and single vehicles once no group fits the vehicles still asked for."""
    from sd_sim_plugin.model.herding import herded_scene, vehicle_groups

    horizon = Horizon()
    queue = _box_agents([0.0, 6.0, 12.0, 30.0], [0, 0, 0, 0])  # a queue of three, chained, and a lone car
    spread = _box_agents([-30.0, -15.0, 20.0], [0, 1, 0], y=10.0)  # a pedestrian is in no group
    pool = Agents.concatenate([queue, spread])
    groups = vehicle_groups([4, 3], pool.trajectory[:, 2, :2], pool.types == 0, 8.0)
    assert sorted(g.tolist() for g in groups) == [[0, 1, 2], [3], [4], [6]]
    for asked in (3, 4, 5):
        scene = herded_scene([queue, spread], horizon, np.array([asked, 0, 0]), 1.15, True, group_m=8.0)
        xy = {(float(x), float(y)) for x, y in scene.trajectory[:, 2, :2]}
        in_queue = xy & {(0.0, 0.0), (6.0, 0.0), (12.0, 0.0)}
        assert len(scene) == asked and len(in_queue) in (0, 3)
    two = herded_scene([queue, spread], horizon, np.array([2, 0, 0]), 1.15, True, group_m=8.0)
    assert len(two) == 2  # the queue does not fit: single vehicles
    # a lone vehicle is a group of one and competes with bigger groups: three draws put a car at x = -30, one a
    # pair at 0 and 6, so the pool is mostly at -30 and the scene of two starts there
    pair, lone = _box_agents([0.0, 6.0], [0, 0]), _box_agents([-30.0], [0])
    picked = herded_scene([pair, lone, lone, lone], horizon, np.array([2, 0, 0]), 1.15, True, group_m=8.0)
    assert -30.0 in picked.trajectory[:, 2, 0].tolist() and len(picked) == 2


def test_draw_selection_herding_takes_its_agents_from_the_draws(trained, road_scenes):
    """With draw_selection herding, every agent of a scene is an agent of one of its draws, no more vehicles than
    asked, none overlapping; the same seed gives the same scene, and the config refuses an unknown
    selection."""
    from sd_sim_plugin.scene.geometry import boxes_overlap

    gen = ScenarioDiffusionGenerator.from_checkpoint(trained[0])
    scene = road_scenes[1]
    k = 3
    plain = gen.generate(scene.map, density={AgentType.VEHICLE: 4}, seed=5, count=k)  # the draws of one scene
    gen.cfg = replace(gen.cfg, draws_per_scene=k, draw_selection="herding")
    herded = gen.generate(scene.map, density={AgentType.VEHICLE: 4}, seed=5)[0].agents
    pool = np.concatenate([p.agents.trajectory for p in plain])
    assert all(any(np.array_equal(t, q) for q in pool) for t in herded.trajectory)
    assert 0 < len(herded) <= 4
    t0 = herded.num_steps // 2
    boxes = np.concatenate([herded.trajectory[:, t0], herded.length[:, None], herded.width[:, None]], 1)
    assert not (boxes_overlap(boxes, boxes) & ~np.eye(len(boxes), dtype=bool)).any()
    again = gen.generate(scene.map, density={AgentType.VEHICLE: 4}, seed=5)[0].agents
    np.testing.assert_array_equal(again.trajectory, herded.trajectory)
    with pytest.raises(ValueError, match="draw_selection 'best' is not one of most_typical, herding, herding_groups"):
        replace(gen.cfg, draw_selection="best")


def test_draws_per_scene_keeps_one_of_its_draws(trained, road_scenes):
    """With draws_per_scene, each scene is one of the draws sampled in its batch (the same seed, the same scene), and
    the config refuses a count outside [1, 8]."""
    gen = ScenarioDiffusionGenerator.from_checkpoint(trained[0])
    scene = road_scenes[1]
    k = 3
    plain = gen.generate(scene.map, density=4, seed=5, count=2 * k)  # the same noise as two scenes drawn 3 times
    gen.cfg = replace(gen.cfg, draws_per_scene=k)
    chosen = gen.generate(scene.map, density=4, seed=5, count=2)
    for i, c in enumerate(chosen):
        candidates = [p.agents.trajectory for p in plain[i * k:(i + 1) * k]]
        assert any(c.agents.trajectory.shape == t.shape and np.array_equal(c.agents.trajectory, t)
                   for t in candidates)
    for a, b in zip(chosen, gen.generate(scene.map, density=4, seed=5, count=2), strict=True):
        np.testing.assert_array_equal(a.agents.trajectory, b.agents.trajectory)
    for bad in (0, 9, 2.0, True):
        with pytest.raises(SdSimError, match=r"draws_per_scene \(.*\) must be a whole number in \[1, 8\]"):
            ScenarioDiffusionGenerator.from_checkpoint(trained[0], draws_per_scene=bad)


def _second_seed(ckpt: Path, dst: Path) -> Path:
    """A copy of ``ckpt`` whose denoiser weights are perturbed: the same recipe as if trained with another seed."""
    from sd_sim_plugin.model.checkpoint import load_tensors, save_weights

    copy = _copy_ckpt(ckpt, dst)
    noise = torch.Generator().manual_seed(1)
    state = load_tensors(copy / WEIGHT_FILES["denoiser"])
    save_weights({k: v + 0.05 * v.std().nan_to_num() * torch.randn(v.shape, generator=noise)
                  if v.is_floating_point() and v.numel() > 1 else v for k, v in state.items()},
                 copy / WEIGHT_FILES["denoiser"])
    return copy


def test_ensemble_samples_row_r_with_denoiser_r_mod_m(trained, road_scenes, tmp_path, capsys):
    """`sd-sim ensemble` writes one checkpoint from two seeds' checkpoints; its batch row r is what denoiser r mod 2
    alone gives that row (same noise), and each member's rows differ from the other's."""
    base, other = trained[0], _second_seed(trained[0], tmp_path / "seed1")
    assert main(["ensemble", str(base), str(other), "--out", str(tmp_path / "ens")]) == 0
    assert "2 denoisers" in capsys.readouterr().out
    ens = ScenarioDiffusionGenerator.from_checkpoint(tmp_path / "ens")
    assert ens.cfg.denoisers == 2 and len(ens.denoisers) == 2
    scene = road_scenes[1]
    got = ens.generate(scene.map, density=4, seed=5, count=4)
    alone = [ScenarioDiffusionGenerator.from_checkpoint(c).generate(scene.map, density=4, seed=5, count=4)
             for c in (base, other)]
    for r, g in enumerate(got):
        want = alone[r % 2][r].agents.trajectory
        assert g.agents.trajectory.shape == want.shape
        np.testing.assert_allclose(g.agents.trajectory, want, atol=1e-3)
    assert any(a.agents.trajectory.shape != b.agents.trajectory.shape
               or not np.allclose(a.agents.trajectory, b.agents.trajectory, atol=1e-3)
               for a, b in zip(*alone, strict=True))
    again = ens.generate(scene.map, density=4, seed=5, count=4)
    for a, b in zip(got, again, strict=True):
        np.testing.assert_array_equal(a.agents.trajectory, b.agents.trajectory)


def test_ensemble_refuses_members_that_are_not_one_recipe(trained, tmp_path, capsys):
    """Members with another autoencoder or config, an untrained, single or damaged checkpoint, or an occupied --out:
    one line each, exit 2, and nothing written; a damaged file in an ensemble names itself when loaded; a fine-tune
    of an ensemble starts with one denoiser."""
    base = trained[0]
    other_ae = _copy_ckpt(base, tmp_path / "other_ae")
    data = bytearray((other_ae / WEIGHT_FILES["autoencoder"]).read_bytes())
    data[-1] ^= 0x01  # one bit of one weight
    (other_ae / WEIGHT_FILES["autoencoder"]).write_bytes(bytes(data))
    other_cfg = _copy_ckpt(base, tmp_path / "other_cfg")
    cfg, record = load_config(other_cfg)
    save_config(other_cfg, replace(cfg, latent_std=tuple(2 * v for v in cfg.latent_std)), record)
    stage1 = _copy_ckpt(base, tmp_path / "stage1")
    cfg, record = load_config(stage1)
    (stage1 / "config.json").write_text(json.dumps({"format_version": 1, "model": cfg.to_dict(),
                                                    "training": {"autoencoder": record.get("autoencoder")}}))
    broken = _copy_ckpt(base, tmp_path / "broken")
    (broken / WEIGHT_FILES["denoiser"]).write_bytes((broken / WEIGHT_FILES["denoiser"]).read_bytes()[:100])
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("user data")
    for members, out, message in (
            ([other_ae], tmp_path / "e1", "its autoencoder differs"),
            ([other_cfg], tmp_path / "e2", "'latent_std' differs"),
            ([stage1], tmp_path / "e3", "not a trained single-denoiser checkpoint"),
            ([], tmp_path / "e4", "an ensemble needs 2 to 8 checkpoints, got 1"),
            ([broken], tmp_path / "e5", "denoiser.safetensors: not a readable safetensors file"),
            ([base], occupied, "exists and is not an empty folder")):
        assert main(["ensemble", str(base), *map(str, members), "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
        assert not out.exists() or out == occupied
    assert (occupied / "keep.txt").read_text() == "user data"
    assert main(["ensemble", str(base), str(base), "--out", str(tmp_path / "ens")]) == 0
    member = tmp_path / "ens" / "denoiser_1.safetensors"
    member.write_bytes(member.read_bytes()[:100])
    with pytest.raises(SdSimError, match="denoiser_1.safetensors: not a readable safetensors file"):
        ScenarioDiffusionGenerator.from_checkpoint(tmp_path / "ens")
    cfg, _ = load_config(tmp_path / "ens")
    assert cfg.denoisers == 2 and cfg.with_default_sampling().denoisers == 1 and cfg.for_new_denoiser().denoisers == 1
    with pytest.raises(ValueError, match=r"denoisers \(9\) must be a whole number in \[1, 8\]"):
        replace(cfg, denoisers=9)


def _keep_right(scene):
    """``scene`` with the left two of its four lanes reversed: a two-way road whose traffic keeps right."""
    m = scene.map
    centres = [c if i < 2 else c[::-1].copy() for i, c in enumerate(m.lane_centrelines)]
    return replace(scene, map=replace(m, lane_centrelines=centres))


def test_left_hand_windows_are_mirrored_in_training_and_generation(trained, road_scenes, tiny_config):
    """With ``mirror_left_hand``, a left-hand window trains as its right-hand mirror image, and a left-hand map is
    generated as the mirror image of what the model makes on its mirror; right-hand maps are left alone."""
    from sd_sim_plugin.model.cache import config_key, scene_arrays
    from sd_sim_plugin.scene.handedness import mirror_agents, mirror_scene, traffic_side

    right = _keep_right(road_scenes[1])
    left = mirror_scene(right)
    assert (traffic_side(right.map), traffic_side(left.map)) == ("right", "left")
    on = replace(tiny_config, mirror_left_hand=True)
    assert config_key(replace(tiny_config, mirror_left_hand=False)) == config_key(tiny_config) != config_key(on)
    for k, v in scene_arrays(left, on).items():  # mirrored twice: equal up to rounding
        np.testing.assert_allclose(v, scene_arrays(right, tiny_config)[k], atol=1e-3, err_msg=k)
    for k, v in scene_arrays(right, on).items():
        np.testing.assert_array_equal(v, scene_arrays(right, tiny_config)[k], err_msg=k)

    gen = ScenarioDiffusionGenerator.from_checkpoint(trained[0])
    tokens = tokens_from_agents(agents_in_view(right, gen.cfg), right.horizon)[:2]
    plain = gen.generate(right.map, agent_tokens=tokens, density=2, seed=3)[0]
    gen.cfg = replace(gen.cfg, mirror_left_hand=True)
    assert gen.generate(right.map, agent_tokens=tokens, density=2, seed=3)[0].meta.get("mirrored") is None
    out = gen.generate(left.map, agent_tokens=[mirror_token(t) for t in tokens], density=2, seed=3)[0]
    assert out.meta["mirrored"] is True and out.map is left.map
    np.testing.assert_allclose(out.agents.trajectory, mirror_agents(plain.agents).trajectory, atol=1e-5)


def test_fine_tuning_starts_from_another_checkpoint(trained, tmp_path, capsys):
    """``init``: stage 1 starts from that checkpoint's weights; stage 2 also keeps its latent statistics and recipe,
    but not its sampling choice (steps, guidance)."""
    from sd_sim_plugin.model.checkpoint import load_tensors

    ckpt = _copy_ckpt(trained[0], tmp_path / "guided")  # sampling chosen for it: 4 steps with guidance
    cfg, record = load_config(ckpt)
    save_config(ckpt, replace(cfg, sampler_steps=4, guidance_scale=2.0, offroad_vehicle_scale=0.3,
                              misaligned_vehicle_scale=0.0, ego_flag=False, mirror_left_hand=True,
                              trajectory_overlap=True, lane_snap_deg=180.0), record)
    arrays = trained[1]
    out = tmp_path / "fine_tuned"
    opts = TrainOptions(steps=1, batch_size=2, lr=1e-9, eval_every=1000, progress=False, init=ckpt)
    train_autoencoder(arrays, None, out, opts)
    with pytest.raises(SdSimError, match="no trained diffusion stage to fine-tune from"):
        train_diffusion(arrays, None, out, replace(opts, init=out))  # stage 1 only: nothing to start stage 2 from
    train_diffusion(arrays, None, out, opts)
    for name in WEIGHT_FILES.values():  # one step at lr 1e-9: still the starting weights, not a fresh network
        start, tuned = load_tensors(ckpt / name), load_tensors(out / name)
        assert start.keys() == tuned.keys()
        for k in start:
            torch.testing.assert_close(tuned[k], start[k], atol=1e-5, rtol=0)
    (cfg0, _), (cfg1, record) = load_config(ckpt), load_config(out)
    assert (cfg1.latent_mean, cfg1.latent_std, cfg1.p_mean) == (cfg0.latent_mean, cfg0.latent_std, cfg0.p_mean)
    assert (cfg1.sampler_steps, cfg1.guidance_scale, cfg1.offroad_vehicle_scale, cfg1.misaligned_vehicle_scale,
            cfg1.ego_flag, cfg1.trajectory_overlap, cfg1.lane_snap_deg) == (ModelConfig().sampler_steps, 1.0, 1.0, 1.0,
                                                                            True, False, 20.0)
    assert cfg1.mirror_left_hand  # a property of the training data, not a sampling choice: kept
    assert record["diffusion"]["init"] == str(ckpt) and record["autoencoder"]["init"] == str(ckpt)
    args = ["train", "--stage", "autoencoder", "--data", str(tmp_path), "--out", str(out), "--init", str(ckpt)]
    assert main([*args, "--resume"]) == 2
    assert "give one of them" in capsys.readouterr().err
    plain = tmp_path / "plain"  # a run trained without mirroring cannot start mirroring halfway
    plain.mkdir()
    cfg0_plain, record0 = load_config(trained[0])
    save_config(plain, cfg0_plain, record0)
    assert main(["train", "--stage", "diffusion", "--data", str(tmp_path), "--out", str(plain), "--resume",
                 "--mirror-left-hand"]) == 2
    assert "was trained without it, so --resume cannot add it" in capsys.readouterr().err


def test_domain_flag_widens_the_global_token_and_reaches_the_model(trained, road_scenes, tmp_path, capsys):
    """``domain_flag``: the fine-tune's global token gains the real-data feature with a zero weight (so it starts as
    the starting checkpoint), training windows carry their domain, and ``real_flag`` reaches the network."""
    from sd_sim_plugin.model.cache import concatenate
    from sd_sim_plugin.model.checkpoint import load_tensors
    from sd_sim_plugin.model.tokens import DOMAIN_GLOBAL_DIM, GLOBAL_TOKEN_DIM

    layout = replace(TokenLayout(), global_dim=DOMAIN_GLOBAL_DIM)
    feats = global_token_features(np.array([2, UNSET]), layout, True, np.array([True, False]))
    assert feats.shape == (2, DOMAIN_GLOBAL_DIM) and list(feats[:, -1]) == [1.0, 0.0]
    np.testing.assert_array_equal(feats[:, :-1], global_token_features(np.array([2, UNSET]), TokenLayout()))
    with pytest.raises(ValueError, match="real_flag needs a global token with the real-data feature"):
        ModelConfig(real_flag=True)
    arrays = trained[1]
    assert arrays.real_flags.all()  # synthetic scenes name no PG source
    both = concatenate([replace(arrays, real=np.zeros(len(arrays), bool)), arrays])
    assert list(both.real_flags) == [False] * len(arrays) + [True] * len(arrays)

    out = tmp_path / "domain"
    opts = TrainOptions(steps=1, batch_size=2, lr=1e-9, eval_every=1000, progress=False, init=trained[0])
    train_autoencoder(arrays, None, out, opts)
    train_diffusion(arrays, None, out, opts, domain_flag=True)
    cfg = load_config(out)[0]
    assert cfg.tokens.global_dim == DOMAIN_GLOBAL_DIM and not cfg.real_flag
    w = load_tensors(out / WEIGHT_FILES["denoiser"])["global_mlp.0.weight"]
    assert w.shape[1] == DOMAIN_GLOBAL_DIM and w[:, GLOBAL_TOKEN_DIM:].abs().max() < 1e-6
    start = ScenarioDiffusionGenerator.from_checkpoint(trained[0])
    gen = ScenarioDiffusionGenerator.from_checkpoint(out)
    scene = road_scenes[0]
    before = start.generate(scene.map, density=3, seed=2)[0].agents.trajectory
    np.testing.assert_allclose(gen.generate(scene.map, density=3, seed=2)[0].agents.trajectory, before, atol=1e-3)
    with torch.no_grad():
        gen.denoiser.global_mlp[0].weight[:, GLOBAL_TOKEN_DIM:] = 5.0
    as_pg = gen.generate(scene.map, density=3, seed=2)[0].agents.trajectory
    gen.cfg = replace(gen.cfg, real_flag=True)
    assert not np.array_equal(gen.generate(scene.map, density=3, seed=2)[0].agents.trajectory, as_pg)
    assert main(["train", "--stage", "autoencoder", "--data", str(tmp_path), "--out", str(out), "--domain-flag"]) == 2
    assert "--domain-flag is a stage-2 option" in capsys.readouterr().err
    assert main(["train", "--stage", "diffusion", "--data", str(tmp_path), "--out", str(trained[0]), "--resume",
                 "--domain-flag"]) == 2  # refused before anything is read or written
    assert "was trained without it, so --resume cannot add it" in capsys.readouterr().err
    from sd_sim_plugin.model.cache import config_key  # the global token is not cached: one cache serves both
    assert config_key(cfg) == config_key(load_config(trained[0])[0])


def test_new_stage_2_takes_its_unet_width(trained, tmp_path, capsys):
    """``--unet-channels`` sizes a new stage 2 (recorded in config.json, loadable); anything else is one line."""
    ckpt = _copy_ckpt(trained[0], tmp_path / "wide")
    opts = TrainOptions(steps=1, batch_size=2, eval_every=1000, progress=False)
    train_diffusion(trained[1], None, ckpt, opts, unet_channels=(24, 48))
    gen = ScenarioDiffusionGenerator.from_checkpoint(ckpt)
    assert gen.cfg.unet_channels == (24, 48)
    assert gen.denoiser.unet.config.block_out_channels == (24, 48)
    args = ["train", "--stage", "diffusion", "--data", str(tmp_path), "--out", str(ckpt)]
    for extra, says in ((["--unet-channels", "20,40"], "give two positive multiples of 8"),
                        (["--unet-channels", "wide"], "give two positive multiples of 8"),
                        (["--unet-channels", "24,48", "--resume"], "sizes a new stage 2")):
        assert main([*args, *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and says in err[0]


def test_bfloat16_unet_stays_close_to_float32_and_is_seeded(trained, road_scenes):
    """Sampling with the U-Net in bfloat16 is deterministic per seed and its denoised latents track float32's."""
    ckpt = trained[0]
    fp32 = ScenarioDiffusionGenerator.from_checkpoint(ckpt, precision="float32")
    bf16 = ScenarioDiffusionGenerator.from_checkpoint(ckpt, precision="bfloat16")
    assert fp32.unet_dtype(32) == torch.float32 and bf16.unet_dtype(1) == torch.bfloat16
    auto = ScenarioDiffusionGenerator.from_checkpoint(ckpt)  # bfloat16 only for batches, and only where native
    assert auto.unet_dtype(1) == torch.float32
    assert auto.unet_dtype(32) == (torch.bfloat16 if torch.ops.mkldnn._is_mkldnn_bf16_supported() else torch.float32)
    auto.cfg = replace(auto.cfg, draws_per_scene=8)  # the U-Net's batch is scenes x draws
    assert auto.unet_dtype(4) == auto.unet_dtype(32) and auto.unet_dtype(1) == torch.float32
    cfg = fp32.cfg
    x = torch.randn(2, cfg.latent_channels, cfg.latent_size, cfg.latent_size,
                    generator=torch.Generator().manual_seed(0))
    maps = torch.zeros(2, cfg.map_channels, cfg.size_px, cfg.size_px)
    feats, mask = torch.zeros(2, 1, cfg.tokens.agent_dim), torch.zeros(2, 1, dtype=torch.bool)
    with torch.inference_mode():
        condition = fp32.denoiser.spatial_condition(maps, feats, mask)
        tokens, tmask = fp32.denoiser.embed_tokens(feats, mask, torch.from_numpy(
            global_token_features(np.array([2, 2]), cfg.tokens, True)))
        for sigma in (20.0, 1.0, 0.05):
            s = torch.full((2,), sigma)
            a = fp32._denoise(0, condition, tokens, tmask, 2)(x * sigma, s)
            b = bf16._denoise(0, condition, tokens, tmask, 2)(x * sigma, s)
            assert b.dtype == torch.float32
            assert (a - b).norm() / a.norm() < 0.03, sigma
    one = bf16.generate(road_scenes[0].map, seed=5, count=2, density=3)
    two = bf16.generate(road_scenes[0].map, seed=5, count=2, density=3)
    for x1, x2 in zip(one, two):
        np.testing.assert_array_equal(x1.agents.trajectory, x2.agents.trajectory)
    with pytest.raises(SdSimError, match="precision 'half'"):
        ScenarioDiffusionGenerator.from_checkpoint(ckpt, precision="half")


def _two_scenes_with_two_tokens(gen: ScenarioDiffusionGenerator, scene) -> tuple[torch.Tensor, ...]:
    """``sample_agents`` inputs: ``scene``'s map twice, its first two other agents as tokens in both."""
    maps = torch.from_numpy(rasterise_map(scene.map, gen.raster))[None].expand(2, -1, -1, -1)
    feats = torch.from_numpy(agent_token_features(tokens_from_agents(scene.others, scene.horizon)[:2],
                                                  gen.cfg.tokens))[None].expand(2, -1, -1)
    return maps, feats, torch.ones(2, 2, dtype=torch.bool)


def _record_latents(*gens: ScenarioDiffusionGenerator) -> list[torch.Tensor]:
    """A list that collects every latent the generators sample, before decoding rounds them into boxes."""
    latents = []
    for gen in gens:
        decode = gen.autoencoder.decode
        gen.autoencoder.decode = lambda z, m, decode=decode: (latents.append(z.clone()), decode(z, m))[1]
    return latents


def test_guidance_scale_zero_samples_the_model_with_the_global_token_unset(trained, road_scenes, tmp_path):
    """Scale 0 over every noise level gives exactly the scene of the same agent tokens with the global token unset;
    the guided model stays seeded; the checkpoint's scale can be replaced and a bad one is one clear error."""
    ckpt = _copy_ckpt(trained[0], tmp_path / "guided")
    cfg, record = load_config(ckpt)
    save_config(ckpt, replace(cfg, guidance_scale=0.0, guidance_interval=(0.0, 1000.0)), record)
    guided = ScenarioDiffusionGenerator.from_checkpoint(ckpt)
    plain = ScenarioDiffusionGenerator.from_checkpoint(trained[0])
    assert ScenarioDiffusionGenerator.from_checkpoint(ckpt, guidance_scale=1.0).cfg.guidance_scale == 1.0
    maps, feats, given = _two_scenes_with_two_tokens(guided, road_scenes[2])
    latents = _record_latents(guided, plain)
    guided.sample_agents(maps, feats, given, np.array([3, 3]), seed=4)
    plain.sample_agents(maps, feats, given, np.array([UNSET, UNSET]), seed=4)
    plain.sample_agents(maps, feats, given, np.array([3, 3]), seed=4)
    guided.sample_agents(maps, feats, given, np.array([3, 3]), seed=4)
    zero, unconditional, conditional, again = latents
    torch.testing.assert_close(zero, unconditional, atol=1e-5, rtol=1e-5)
    assert (zero - conditional).abs().max() > 1e-4
    assert torch.equal(zero, again)
    with pytest.raises(SdSimError, match="guidance scale -1"):
        ScenarioDiffusionGenerator.from_checkpoint(ckpt, guidance_scale=-1.0)


def test_domain_guidance_sets_real_traffic_against_pg_traffic(road_scenes):
    """``guidance_contrast`` domain: scale 0 over every noise level gives exactly the scene drawn with the real flag
    off (the count and agent tokens kept), another scale a third scene; it needs the real flag and a known name."""
    gen = ScenarioDiffusionGenerator.from_checkpoint(CHECKPOINTS / "real")
    maps, feats, given = _two_scenes_with_two_tokens(gen, road_scenes[2])
    latents = _record_latents(gen)
    shipped = gen.cfg
    for cfg, real in ((replace(shipped, guidance_scale=0.0, guidance_interval=(0.0, 1000.0),
                               guidance_contrast="domain"), True),
                      (shipped, False), (shipped, True),
                      (replace(shipped, guidance_scale=2.0, guidance_interval=(0.0, 1000.0),
                               guidance_contrast="domain"), True)):
        gen.cfg = cfg
        gen.sample_agents(maps, feats, given, np.array([3, 3]), seed=4, real=real)
    zero, as_pg, as_real, guided = latents
    torch.testing.assert_close(zero, as_pg, atol=1e-5, rtol=1e-5)
    assert (zero - as_real).abs().max() > 1e-3
    assert (guided - as_real).abs().max() > 1e-3 and (guided - as_pg).abs().max() > 1e-3
    with pytest.raises(ValueError, match="needs real_flag"):
        replace(shipped, guidance_contrast="domain", real_flag=False)
    with pytest.raises(ValueError, match="guidance_contrast 'ego' is not one of count, domain"):
        replace(shipped, guidance_contrast="ego")


def test_sweep_windows_are_evenly_spaced_with_both_ends():
    """The sweep (and the diagnostics that must score the same windows) take both ends and evenly spaced ones."""
    from sd_sim_plugin.model.sampler_sweep import reference_windows

    windows = list(range(100))
    assert reference_windows(windows, 5) == [0, 24, 49, 74, 99]
    assert reference_windows(windows[:3], 39) == [0, 1, 2]


def test_guidance_sweep_writes_the_best_setting_and_how_it_was_chosen(trained, road_scenes, tmp_path, capsys):
    """The sweep measures each scale on the given windows and stores the lowest-MMD one with its record; bad
    arguments are one line."""
    from sd_sim_plugin.data.store import write_shard
    from sd_sim_plugin.model.sampler_sweep import main as sweep

    ckpt = _copy_ckpt(trained[0], tmp_path / "ckpt")
    write_shard(tmp_path / "val" / "shard_00000.npz", road_scenes[-3:], {"unit": "test"})
    sweep([str(ckpt), str(tmp_path / "val"), "--limit", "3", "--guidance", "1,2", "--intervals", "1:10,0:80",
           "--steps", "2,3", "--offroad", "1,0.2", "--seeds", "2", "--max-evals", "4", "--write"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [(r["steps"], r["guidance"], r["interval"], r["offroad"]) for r in rows] == [
        (n, w, iv, o) for n in (2, 3) for w, iv in ((1.0, [1.0, 10.0]), (2.0, [1.0, 10.0]), (2.0, [0.0, 80.0]))
        for o in (1.0, 0.2)]  # unguided once: its interval means nothing
    assert [r["guided_steps"] for r in rows[:6:2]] == [0, 0, 2]  # 2 steps: sigma 80 and 0.002 (0 after the last)
    over = [r for r in rows if r["network_evals"] + r["guided_steps"] > 4]
    assert over and all("skipped" in r and "position" not in r for r in over)  # over the budget: not measured
    measured = [r for r in rows if "skipped" not in r]
    best = min(measured, key=lambda r: r["position"] + r["heading_vector"] + r["velocity"])
    cfg, record = load_config(ckpt)
    assert (cfg.sampler_steps, cfg.guidance_scale, list(cfg.guidance_interval), cfg.offroad_vehicle_scale) == (
        best["steps"], best["guidance"], best["interval"], best["offroad"])
    assert record["guidance"]["windows"] == 3 and record["guidance"]["seeds"] == 2 and "diffusion" in record
    assert record["guidance"]["density"] == "per-type"
    # chosen with one model (trained without the validation windows), written into another
    other = _copy_ckpt(trained[0], tmp_path / "all_data")
    cfg_other, record_other = load_config(other)
    save_config(other, replace(cfg_other, trajectory_overlap=True), record_other)  # chosen by its own rule
    sweep([str(ckpt), str(tmp_path / "val"), "--limit", "2", "--guidance", "3", "--steps", "2", "--offroad", "0.5",
           "--write", "--write-to", str(other)])
    cfg2, record2 = load_config(other)
    assert (cfg2.guidance_scale, cfg2.offroad_vehicle_scale, cfg2.trajectory_overlap) == (3.0, 0.5, True)
    sweep([str(ckpt), str(tmp_path / "val"), "--limit", "2", "--guidance", "3", "--steps", "2", "--offroad", "0.5",
           "--density", "total", "--write", "--write-to", str(other)])
    assert load_config(other)[1]["guidance"]["density"] == "total"
    assert record2["guidance"]["measured_with"] == str(ckpt) and load_config(ckpt)[0] == cfg
    # the centred-on-ego flag is a sampling choice too: it reaches the model, and the sweep writes its pick
    gen = ScenarioDiffusionGenerator.from_checkpoint(ckpt)
    as_ego = gen.generate(road_scenes[0].map, density=3, seed=5)[0].agents.trajectory
    gen.cfg = replace(gen.cfg, ego_flag=False)
    assert not np.array_equal(gen.generate(road_scenes[0].map, density=3, seed=5)[0].agents.trajectory, as_ego)
    capsys.readouterr()
    sweep([str(ckpt), str(tmp_path / "val"), "--limit", "2", "--guidance", "1", "--steps", "2", "--ego-flag", "1,0",
           "--write"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [r["ego_flag"] for r in rows] == [True, False]
    best = min(rows, key=lambda r: r["position"] + r["heading_vector"] + r["velocity"])
    assert load_config(ckpt)[0].ego_flag == best["ego_flag"]
    for option, values, row_key, field in (("--misaligned", "1,0", "misaligned", "misaligned_vehicle_scale"),
                                           ("--lane-snap", "20,180", "lane_snap", "lane_snap_deg"),
                                           ("--solver", "dpmpp2m,dpmpp2m_sde", "sampler", "sampler"),
                                           ("--refill", "0,1", "refill", "refill_rounds"),
                                           ("--draws", "1,2", "draws", "draws_per_scene"),
                                           ("--selection", "most_typical,herding", "selection", "draw_selection")):
        capsys.readouterr()  # the lane prior, the lane alignment angle, the solver, refilling and draws likewise
        sweep([str(ckpt), str(tmp_path / "val"), "--limit", "2", "--guidance", "1", "--steps", "2", option, values,
               "--write"])
        rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
        assert [r[row_key] for r in rows] == [v if field in ("sampler", "draw_selection") else float(v)
                                              for v in values.split(",")]
        best = min(rows, key=lambda r: r["position"] + r["heading_vector"] + r["velocity"])
        cfg3, record3 = load_config(ckpt)
        assert getattr(cfg3, field) == record3["guidance"][field] == best[row_key]
    # cross-validation: each fold's model on its own windows, pooled by the scenes each scored
    write_shard(tmp_path / "val_b" / "shard_00000.npz",
                [replace(s, meta={**s.meta, "file": "b.pkl"}) for s in road_scenes[:2]], {"unit": "test"})
    capsys.readouterr()
    sweep([str(ckpt), str(tmp_path / "val"), "--guidance", "1", "--steps", "2", "--fold", str(other),
           str(tmp_path / "val_b"), "--per-scene", "--write", "--write-to", str(other)])
    [row] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    first, second = row["folds"]
    for k in ("position", "heading_vector", "velocity"):
        assert row[k] == pytest.approx((3 * first[k] + 2 * second[k]) / 5, abs=2e-4)
    # generated over reference vehicles, pooled by windows (a setting can lower the MMDs by its type mix)
    generated, reference = ((3 * first["vehicles_per_scene"][i] + 2 * second["vehicles_per_scene"][i]) for i in (0, 1))
    assert reference > 0 and row["vehicles_ratio"] == pytest.approx(generated / reference, abs=2e-3)
    for k in ("jsd_nearest_neighbour", "collision_t0"):  # how vehicles sit together, pooled by windows likewise
        assert row[k] == pytest.approx((3 * first[k] + 2 * second[k]) / 5, abs=2e-4)
    # per scene: the second fold's windows all come from one file, so its numbers are that fold's
    assert set(row["scenes"]) == {"", "b.pkl"}
    assert row["scenes"]["b.pkl"] == [second[k] for k in ("position", "heading_vector", "velocity")]
    record4 = load_config(other)[1]["guidance"]
    assert record4["measured_with"] == [str(ckpt), str(other)] and record4["windows"] == 5
    with pytest.raises(SdSimError, match=r"misaligned_vehicle_scale \(2.0\) must be in \[0, 1\]"):
        sweep([str(ckpt), str(tmp_path / "val"), "--guidance", "2", "--misaligned", "2"])
    with pytest.raises(SdSimError, match="--ego-flag 'yes'"):
        sweep([str(ckpt), str(tmp_path / "val"), "--guidance", "2", "--ego-flag", "yes"])
    with pytest.raises(SdSimError, match=r"offroad_vehicle_scale \(-0.5\) must be in \[0, 1\]"):
        sweep([str(ckpt), str(tmp_path / "val"), "--guidance", "2", "--offroad", "-0.5"])
    with pytest.raises(SdSimError, match="--write-to goes with --write"):
        sweep([str(ckpt), str(tmp_path / "val"), "--guidance", "2", "--write-to", str(other)])
    with pytest.raises(SdSimError, match="no such checkpoint folder"):
        sweep([str(ckpt), str(tmp_path / "val"), "--guidance", "2", "--write", "--write-to", str(tmp_path / "nope")])
    with pytest.raises(SdSimError, match="--intervals"):
        sweep([str(ckpt), str(tmp_path / "val"), "--guidance", "2", "--intervals", "1-10"])
    with pytest.raises(SdSimError, match=r"lane_snap_deg \(200.0\) must be in \[0, 180\]"):
        sweep([str(ckpt), str(tmp_path / "val"), "--guidance", "2", "--lane-snap", "200"])
    with pytest.raises(SdSimError, match="sweep setting: guidance_contrast 'pg' is not one of count, domain"):
        sweep([str(ckpt), str(tmp_path / "val"), "--guidance", "2", "--contrast", "pg"])
    with pytest.raises(SdSimError, match="--write, --write-to, --contrast, --solver, --steps, --offroad, "
                                         "--misaligned, --lane-snap, --ego-flag, --real-flag, --mirror-left, "
                                         "--refill, --draws, --selection and"):
        sweep([str(ckpt), str(tmp_path / "val"), "--write"])
    with pytest.raises(SdSimError, match="--refill '1.5': expected whole numbers"):
        sweep([str(ckpt), str(tmp_path / "val"), "--guidance", "1", "--refill", "1.5"])
    with pytest.raises(SdSimError, match=r"sweep setting: refill_rounds \(5\) must be a whole number in \[0, 3\]"):
        sweep([str(ckpt), str(tmp_path / "val"), "--guidance", "1", "--refill", "5"])
    with pytest.raises(SdSimError, match="--mirror-left '2'"):
        sweep([str(ckpt), str(tmp_path / "val"), "--guidance", "2", "--mirror-left", "2"])
    with pytest.raises(SdSimError, match="--seeds"):
        sweep([str(ckpt), str(tmp_path / "val"), "--guidance", "2", "--seeds", "0"])
    with pytest.raises(SdSimError, match="no setting fits"):
        sweep([str(ckpt), str(tmp_path / "val"), "--limit", "1", "--guidance", "2", "--steps", "2",
               "--intervals", "0:80", "--max-evals", "3", "--write"])
    # the vehicles ratio bounds what may be written: measured and printed, but not a candidate when outside
    capsys.readouterr()
    written = load_config(ckpt)[0]
    ratio_args = [str(ckpt), str(tmp_path / "val"), "--limit", "2", "--guidance", "1,3", "--steps", "2", "--write"]
    sweep([*ratio_args[:-1]])  # measure only: the two ratios
    ratios = [json.loads(line)["vehicles_ratio"] for line in capsys.readouterr().out.splitlines()
              if line.startswith("{")]
    tight = min(abs(r - 1) for r in ratios) / 2  # admits no setting unless one draws exactly the logs' vehicles
    admitted = sum(abs(r - 1) <= tight for r in ratios)
    if admitted:
        sweep([*ratio_args, "--vehicles-tolerance", str(tight)])
    else:
        with pytest.raises(SdSimError, match="no setting fits --max-evals None and --vehicles-tolerance"):
            sweep([*ratio_args, "--vehicles-tolerance", str(tight)])
        assert load_config(ckpt)[0] == written
    assert capsys.readouterr().out.count('"not_written"') == len(ratios) - admitted
    sweep([*ratio_args, "--vehicles-tolerance", "100"])
    assert load_config(ckpt)[1]["guidance"]["vehicles_tolerance"] == 100.0
    with pytest.raises(SdSimError, match="--vehicles-tolerance goes with --write"):
        sweep(ratio_args[:-1] + ["--vehicles-tolerance", "0.1"])


def test_auto_precision_is_float32_without_native_bfloat16(monkeypatch):
    """``auto`` never emulates bfloat16: no native support (or no way to ask) means float32 at any batch."""
    from sd_sim_plugin.model import pipeline

    monkeypatch.setattr(pipeline, "_cpu_has_native_bfloat16", lambda: False)
    assert pipeline.denoiser_autocast_dtype("auto", "cpu", 64) is None
    monkeypatch.setattr(pipeline, "_cpu_has_native_bfloat16", lambda: True)
    assert pipeline.denoiser_autocast_dtype("auto", "cpu", 64) == torch.bfloat16
    assert pipeline.denoiser_autocast_dtype("auto", "cpu", pipeline.AUTO_BFLOAT16_MIN_BATCH - 1) is None
    assert pipeline.denoiser_autocast_dtype("auto", "cuda", 64) is None


def test_traced_unet_gives_the_eager_outputs_for_any_batch_and_token_count(trained):
    """The traced, frozen U-Net used in float32 sampling computes what the module does, beyond its example shapes."""
    from sd_sim_plugin.model.denoiser import traced_unet

    gen = ScenarioDiffusionGenerator.from_checkpoint(trained[0], precision="float32")
    net, cfg = gen.denoiser, gen.cfg
    rng = torch.Generator().manual_seed(0)

    def inputs(b: int, n: int) -> tuple[torch.Tensor, ...]:
        mask = torch.ones(b, n)
        mask[0, n // 2:] = 0.0
        channels = net.unet.config.in_channels
        return (torch.randn(b, channels, cfg.latent_size, cfg.latent_size, generator=rng), torch.rand(b, generator=rng),
                torch.randn(b, n, cfg.token_dim, generator=rng), mask)

    with torch.inference_mode():
        traced = traced_unet(net, inputs(1, 3))
        for b, n in ((1, 3), (4, 6), (2, 1)):
            args = inputs(b, n)
            torch.testing.assert_close(traced(*args), net.unet_call(*args), atol=1e-4, rtol=1e-4)
