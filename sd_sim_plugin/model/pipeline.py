"""``ScenarioDiffusionGenerator``: map -> BEV raster -> latent sampling -> decoding -> agents, behind ``Generator``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.model.autoencoder import AgentAutoencoder
from sd_sim_plugin.model.boxes import NUM_TYPES, drivable_cells, proposals_to_agents, remove_overlaps
from sd_sim_plugin.model.checkpoint import WEIGHT_FILES, denoiser_file, load_config, load_weights
from sd_sim_plugin.model.config import ModelConfig
from sd_sim_plugin.model.count import expected_count
from sd_sim_plugin.model.denoiser import LatentDenoiser, traced_unet
from sd_sim_plugin.model.edm import classifier_free_guidance, karras_sigmas, sample
from sd_sim_plugin.model.herding import GROUP_LINK_M, herded_scene
from sd_sim_plugin.model.tokens import UNSET, agent_token_features, global_token_features
from sd_sim_plugin.raster.bev import RasterConfig, rasterise_map
from sd_sim_plugin.scene.discrepancy import mmd
from sd_sim_plugin.scene.geometry import LaneIndex, boxes_overlap
from sd_sim_plugin.scene.handedness import mirror_agents, mirror_map, mirror_token, traffic_side
from sd_sim_plugin.scene.tokens import (
    AgentToken,
    Density,
    density_by_type,
    density_json,
    tokens_from_agents,
    total_density,
)
from sd_sim_plugin.scene.types import Agents, AgentType, Horizon, MapGeometry, Scene, wrap_angle

DEFAULT_EGO_SIZE = (4.5, 1.9)  # length, width used when the caller gives no ego
PRECISIONS = ("auto", "float32", "bfloat16")
# Below this batch the traced float32 U-Net is faster than bfloat16 autocast on the 2-core benchmark machine
# (`python -m benchmarks.model`, one evaluation, three runs): batch 8 17.8-20.9 ms traced vs 21.7-24.9 ms bfloat16;
# batch 16 32.2-38.0 vs 26.9-32.7; batch 32 66.8-75.4 vs 52.3-62.6.
AUTO_BFLOAT16_MIN_BATCH = 16


def _cpu_has_native_bfloat16() -> bool:
    """Whether oneDNN computes bfloat16 natively here (a private torch check: float32 if it ever goes away)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def denoiser_autocast_dtype(precision: str, device: str, batch: int) -> torch.dtype | None:
    """The dtype the U-Net runs in while sampling a batch of ``batch`` scenes: None for float32.

    ``auto`` is bfloat16 on a CPU with native bfloat16 (AVX-512 BF16 / AMX) for batches of at least
    ``AUTO_BFLOAT16_MIN_BATCH``, and float32 otherwise (emulated bfloat16 is slower, small batches gain nothing,
    and on CUDA float32 is fast enough).
    """
    if precision not in PRECISIONS:
        raise SdSimError(f"precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if precision == "float32":
        return None
    if precision == "auto":
        native = device == "cpu" and _cpu_has_native_bfloat16()
        return torch.bfloat16 if native and batch >= AUTO_BFLOAT16_MIN_BATCH else None
    if device != "cpu":
        raise SdSimError(f"precision bfloat16 is for the CPU, not {device!r}")
    return torch.bfloat16


class ScenarioDiffusionGenerator:
    """The trained Scenario Diffusion model as a :class:`~sd_sim_plugin.generators.base.Generator`."""

    name = "diffusion"
    agent_types = (AgentType.VEHICLE, AgentType.PEDESTRIAN, AgentType.CYCLIST)  # its global token counts them all

    def __init__(self, cfg: ModelConfig, autoencoder: AgentAutoencoder,
                 denoiser: LatentDenoiser | Sequence[LatentDenoiser], device: str = "cpu", precision: str = "auto",
                 trace_unet: bool = True) -> None:
        members = [denoiser] if isinstance(denoiser, LatentDenoiser) else list(denoiser)
        if len(members) != cfg.denoisers:
            raise SdSimError(f"{len(members)} denoiser(s) given, the config says {cfg.denoisers}")
        self.cfg = cfg
        self.device = device
        self.precision = precision
        denoiser_autocast_dtype(precision, device, 1)  # checks the name now, not at the first scene
        # per denoiser: None until traced, False to run the module (see _traced_unet)
        self._traced = [None if trace_unet else False] * len(members)
        self.autoencoder = autoencoder.to(device).eval()
        self.denoisers = [net.to(device).eval() for net in members]
        self.denoiser = self.denoisers[0]
        self.raster = RasterConfig(cfg.size_px, cfg.resolution_m)
        self.horizon: Horizon = cfg.horizon
        self._mean = torch.tensor(cfg.latent_mean, device=device).view(1, -1, 1, 1)
        self._std = torch.tensor(cfg.latent_std, device=device).view(1, -1, 1, 1)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "cpu", precision: str = "auto",
                        trace_unet: bool = True, guidance_scale: float | None = None,
                        refill_rounds: int | None = None,
                        draws_per_scene: int | None = None,
                        draw_selection: str | None = None) -> ScenarioDiffusionGenerator:
        """Load a trained checkpoint folder (config.json + both stages' safetensors weights).

        ``precision``: the U-Net's dtype while sampling (:func:`denoiser_autocast_dtype`); ``trace_unet``: run
        float32 sampling on the CPU through the traced U-Net (:func:`traced_unet`); ``guidance_scale``: replaces the
        checkpoint's classifier-free guidance scale (1 = off); ``refill_rounds``: replaces how often scenes short
        of their count are sampled again (0 = never); ``draws_per_scene``: replaces how many draws each scene is made
        from (1 = one draw); ``draw_selection``: replaces how (``most_typical``, ``herding``, ``herding_groups``)."""
        cfg, _ = load_config(path)
        if guidance_scale is not None:
            if guidance_scale < 0:
                raise SdSimError(f"guidance scale {guidance_scale}: must be >= 0 (1 = no guidance)")
            cfg = replace(cfg, guidance_scale=float(guidance_scale))
        overrides = {k: v for k, v in (("refill_rounds", refill_rounds), ("draws_per_scene", draws_per_scene),
                                       ("draw_selection", draw_selection)) if v is not None}
        if overrides:
            try:
                cfg = replace(cfg, **overrides)
            except ValueError as exc:  # the config's own check: a whole number in range
                raise SdSimError(str(exc)) from None
        if not cfg.latent_mean or len(cfg.latent_mean) != cfg.latent_channels:
            raise SdSimError(f"{Path(path) / 'config.json'}: no latent statistics; the diffusion stage was not trained")
        ae = load_weights(AgentAutoencoder(cfg), Path(path) / WEIGHT_FILES["autoencoder"])
        nets = [load_weights(LatentDenoiser(cfg), Path(path) / denoiser_file(m)) for m in range(cfg.denoisers)]
        return cls(cfg, ae, nets, device=device, precision=precision, trace_unet=trace_unet)

    @torch.inference_mode()
    def sample_agents(self, maps: torch.Tensor, feats: torch.Tensor, mask: torch.Tensor, counts: np.ndarray,
                      seed: int = 0, steps: int | None = None, exact_count: bool = True,
                      centre_is_ego: np.ndarray | bool = True, real: np.ndarray | bool = False,
                      lanes: Sequence[LaneIndex | None] | None = None,
                      type_counts: np.ndarray | None = None) -> list[Agents]:
        """Batched core: map rasters (B, C_m, H, W), token features / mask, global counts (B,) -> agents per scene.

        ``centre_is_ego`` and ``real`` are the global token's flags: :meth:`generate` passes the config's
        ``ego_flag`` and ``real_flag``; training validation passes each window's own values.

        With ``exact_count``, a scene whose global token is set keeps its (tokens + count) most probable boxes
        rather than those above the existence threshold; ``type_counts`` ((B, NUM_TYPES), tokens included) says how
        many of each agent type, while the global token still gets the total. ``lanes`` (one per scene) turns
        proposals onto their lane's heading (``lane_snap_deg``) before overlap removal, and lets
        ``misaligned_vehicle_scale`` rank proposals standing across a lane behind the aligned ones. With a count,
        scenes left short of it are refilled up to ``refill_rounds`` times (:meth:`_refill`). With ``draws_per_scene``
        above 1, each scene is the most typical of that many draws (:func:`most_typical_draw`) or, with
        ``draw_selection`` herding, composed from all of them (:func:`~sd_sim_plugin.model.herding.herded_scene`).
        """
        b = len(maps)
        lanes = list(lanes) if lanes is not None else [None] * b
        ego_flags = np.broadcast_to(np.asarray(centre_is_ego, bool), (b,))
        real_flags = np.broadcast_to(np.asarray(real, bool), (b,))
        k = self.cfg.draws_per_scene
        if k == 1:
            agents = self._sample_round(maps, feats, mask, counts, seed, steps, exact_count, ego_flags, real_flags,
                                        lanes, type_counts)
        else:  # every scene k times in one batch, then one scene from its draws
            drawn = self._sample_round(maps.repeat_interleave(k, 0), feats.repeat_interleave(k, 0),
                                       mask.repeat_interleave(k, 0), np.repeat(counts, k), seed, steps, exact_count,
                                       np.repeat(ego_flags, k), np.repeat(real_flags, k),
                                       [ln for ln in lanes for _ in range(k)],
                                       None if type_counts is None else np.repeat(type_counts, k, axis=0))
            agents = [self._from_draws(drawn[i * k:(i + 1) * k], None if type_counts is None or not exact_count
                                       else type_counts[i]) for i in range(b)]
        if not exact_count:
            return agents
        wanted = mask.sum(dim=1).cpu().numpy() + counts
        for round_ in range(1, self.cfg.refill_rounds + 1):
            missing = {i: _shortfall(agents[i], int(wanted[i]), None if type_counts is None else type_counts[i])
                       for i in range(b) if counts[i] != UNSET}
            short = [i for i, m in missing.items() if m.any()]
            if not short:
                break
            refilled = self._refill([agents[i] for i in short], [missing[i] for i in short], type_counts is not None,
                                    maps[short], (int(seed) * 1_000_033 + 7_919 * round_) % 2**62, steps,
                                    ego_flags[short], real_flags[short], [lanes[i] for i in short])
            for i, a in zip(short, refilled, strict=True):
                agents[i] = a
        return agents

    def _from_draws(self, draws: list[Agents], type_counts: np.ndarray | None) -> Agents:
        """One scene from its draws (``draw_selection``): the most typical draw, or agents (or groups of vehicles)
        herded from all of them, as many of each type as ``type_counts`` asks (else as the most typical draw has)."""
        if self.cfg.draw_selection == "most_typical" or type_counts is None:
            typical = draws[most_typical_draw(draws, self.horizon)]
            if self.cfg.draw_selection == "most_typical":
                return typical
            type_counts = np.bincount(np.asarray(typical.types, np.int64), minlength=NUM_TYPES)
        return herded_scene(draws, self.horizon, type_counts, self.cfg.overlap_scale, self.cfg.trajectory_overlap,
                            GROUP_LINK_M if self.cfg.draw_selection == "herding_groups" else 0.0)

    def _sample_round(self, maps: torch.Tensor, feats: torch.Tensor, mask: torch.Tensor, counts: np.ndarray,
                      seed: int, steps: int | None, exact_count: bool, centre_is_ego: np.ndarray,
                      real: np.ndarray, lanes: list[LaneIndex | None],
                      type_counts: np.ndarray | None) -> list[Agents]:
        """One sampling of every scene in the batch, decoded (:meth:`sample_agents` without refilling)."""
        b = len(maps)
        gen = torch.Generator(device="cpu").manual_seed(int(seed))
        noise = torch.randn((b, self.cfg.latent_channels, self.cfg.latent_size, self.cfg.latent_size),
                            generator=gen).to(self.device)
        feats, mask = feats.to(self.device), mask.to(self.device)
        features = global_token_features(counts, self.cfg.tokens, centre_is_ego, real)
        unguided = None
        if self.cfg.guidance_scale != 1.0:  # the other half: the same agent tokens, the count unset or PG traffic
            domain = self.cfg.guidance_contrast == "domain"
            u_counts, u_real = (counts, False) if domain else (np.full(b, UNSET), real)
            unguided = global_token_features(u_counts, self.cfg.tokens, centre_is_ego, u_real)
        sigmas = karras_sigmas(steps or self.cfg.sampler_steps, self.cfg.sigma_min, self.cfg.sigma_max,
                               self.cfg.rho).to(self.device)
        members = len(self.denoisers)
        if members == 1:
            denoise = self._member_denoise(0, maps, feats, mask, features, unguided)
        else:  # row r: denoiser r mod M, so each scene's draws come from all of them
            parts = []
            for member in range(min(members, b)):
                rows = np.arange(member, b, members)
                parts.append((torch.from_numpy(rows).to(self.device), self._member_denoise(
                    member, maps[rows], feats[rows], mask[rows], features[rows],
                    None if unguided is None else unguided[rows])))
            denoise = _split_rows(parts)
        z = sample(denoise, noise, sigmas, solver=self.cfg.sampler, generator=gen)
        proposals = self.autoencoder.decode(z * self._std + self._mean, maps).cpu().numpy()
        wanted = mask.sum(dim=1).cpu().numpy() + counts
        rasters = maps.cpu().numpy() if self.cfg.offroad_vehicle_scale != 1.0 else [None] * b
        per_type = type_counts if type_counts is not None else [None] * b
        return [proposals_to_agents(p, self.cfg, count=int(w) if exact_count and c != UNSET else None,
                                    drivable=None if m is None else drivable_cells(m, self.cfg), lanes=ln,
                                    type_counts=None if n is None else np.asarray(n))
                for p, w, c, m, ln, n in zip(proposals, wanted, counts, rasters, lanes, per_type, strict=True)]

    def _refill(self, kept: list[Agents], missing: list[np.ndarray], per_type: bool, maps: torch.Tensor,
                seed: int, steps: int | None, centre_is_ego: np.ndarray, real: np.ndarray,
                lanes: list[LaneIndex | None]) -> list[Agents]:
        """Scenes short of their count (``missing``: :func:`_shortfall`, per agent type when ``per_type``), sampled
        again with their kept agents as agent tokens and the shortfall as the count; the new agents that are no
        rendering of a kept one and overlap none of them are added, most probable first, up to each type's
        shortfall. The kept agents stay as they were."""
        layout = self.cfg.tokens
        given = [tokens_from_agents(a, self.horizon)[: layout.max_tokens] for a in kept]
        width = max(1, max(len(t) for t in given))
        feats = torch.zeros(len(kept), width, layout.agent_dim)
        mask = torch.zeros(len(kept), width, dtype=torch.bool)
        for i, toks in enumerate(given):
            if toks:
                feats[i, : len(toks)] = torch.from_numpy(agent_token_features(toks, layout))
                mask[i, : len(toks)] = True
        counts = np.array([int(m.sum()) for m in missing], np.int64)
        round_types = None if not per_type else np.stack(
            [np.bincount(np.asarray(a.types[: len(t)], np.int64), minlength=NUM_TYPES) + m
             for a, t, m in zip(kept, given, missing, strict=True)])
        drawn = self._sample_round(maps, feats, mask, counts, seed, steps, True, centre_is_ego, real, lanes,
                                   round_types)
        return [_add_agents(a, d, m if per_type else None, int(m.sum()), self.cfg)
                for a, d, m in zip(kept, drawn, missing, strict=True)]

    def _member_denoise(self, member: int, maps: torch.Tensor, feats: torch.Tensor, mask: torch.Tensor,
                        features: np.ndarray, unguided: np.ndarray | None):
        """The sampler's denoiser for the rows one ensemble member samples: its own map encoding and token
        embedding of them, guided against the ``unguided`` global token features when given."""
        net = self.denoisers[member]
        condition = net.spatial_condition(maps, feats, mask)
        tokens, tmask = net.embed_tokens(feats, mask, torch.from_numpy(features).to(self.device))
        rows = len(maps)
        denoise = self._denoise(member, condition, tokens, tmask, rows)
        if unguided is None:
            return denoise
        u_tokens, _ = net.embed_tokens(feats, mask, torch.from_numpy(unguided).to(self.device))
        paired = self._denoise(member, torch.cat([condition, condition]), torch.cat([tokens, u_tokens]),
                               torch.cat([tmask, tmask]), rows)
        return classifier_free_guidance(denoise, paired, self.cfg.guidance_scale, self.cfg.guidance_interval)

    def _traced_unet(self, member: int, condition: torch.Tensor, tokens: torch.Tensor, tmask: torch.Tensor):
        """An ensemble member's U-Net traced and frozen once, on the first batch's shapes (any batch size and token
        count after); None (the module itself) where tracing fails."""
        if self._traced[member] is None:
            b, c = condition.shape[:2]
            sample = torch.zeros(b, self.cfg.latent_channels + c, *condition.shape[2:])
            try:
                self._traced[member] = traced_unet(self.denoisers[member],
                                                   (sample, torch.zeros(b), tokens, tmask.float()))
            except Exception:  # noqa: BLE001 - tracing is an optimisation; a torch without it runs the module
                self._traced[member] = False
        return self._traced[member] or None

    def unet_dtype(self, batch: int = 1) -> torch.dtype:
        """The dtype the U-Net samples a batch of ``batch`` scenes in (each scene ``draws_per_scene`` rows, split
        among the denoisers)."""
        rows = -(-batch * self.cfg.draws_per_scene // len(self.denoisers))
        return denoiser_autocast_dtype(self.precision, self.device, rows) or torch.float32

    def _denoise(self, member: int, condition: torch.Tensor, tokens: torch.Tensor, tmask: torch.Tensor, rows: int):
        """One ensemble member's U-Net as the sampler's denoiser, in the precision chosen for the ``rows`` scenes it
        samples (guidance doubles the U-Net's batch, not the choice); the solver's arithmetic stays float32.

        In float32 on the CPU the U-Net runs as a traced graph (:func:`traced_unet`, made at the first call)."""
        net = self.denoisers[member]
        dtype = denoiser_autocast_dtype(self.precision, self.device, rows)
        if dtype is None:
            unet = self._traced_unet(member, condition, tokens, tmask) if self.device == "cpu" else None
            return lambda x, s: net(x, s, condition, tokens, tmask, unet=unet)

        def denoise(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
            with torch.autocast(self.device, dtype=dtype):
                return net(x, s, condition, tokens, tmask).float()
        return denoise

    def generate(self, map: MapGeometry, *, ego: Agents | None = None, agent_tokens: list[AgentToken] | None = None,
                 density: Density = None, seed: int = 0, count: int = 1) -> list[Scene]:
        """Generate ``count`` scenes on ``map`` (ego frame); agents overlapping the ego are dropped.

        A per-type ``density`` is exact per type without agent tokens; with them, the total is exact and the type
        mix of the agents beyond the tokens follows the request as far as the tokens' matches allow."""
        if self.cfg.mirror_left_hand and traffic_side(map) == "left":
            # the model was trained on right-hand traffic: generate the mirror image and mirror the agents back
            scenes = self._generate(mirror_map(map), None if ego is None else mirror_agents(ego),
                                    [mirror_token(t) for t in agent_tokens or []], density, seed, count)
            return [replace(s, map=map, agents=mirror_agents(s.agents), meta={**s.meta, "mirrored": True})
                    for s in scenes]
        return self._generate(map, ego, agent_tokens, density, seed, count)

    def _generate(self, map: MapGeometry, ego: Agents | None, agent_tokens: list[AgentToken] | None,
                  density: Density, seed: int, count: int) -> list[Scene]:
        maps = torch.from_numpy(rasterise_map(map, self.raster)).to(self.device)[None].expand(count, -1, -1, -1)
        tokens = list(agent_tokens or [])[: self.cfg.tokens.max_tokens]
        feats = torch.from_numpy(agent_token_features(tokens, self.cfg.tokens))
        if len(tokens) == 0:
            feats = torch.zeros(1, self.cfg.tokens.agent_dim)
        mask = torch.full((count, len(feats)), bool(tokens))
        per_type, total = density_by_type(density, self.agent_types), total_density(density)
        counts = np.full(count, UNSET if total is None else total, np.int64)
        type_counts = None
        if per_type is not None:
            wanted = np.bincount([int(t.agent_type) for t in tokens], minlength=NUM_TYPES)
            wanted += [per_type.get(t, 0) for t in AgentType]
            type_counts = np.broadcast_to(wanted, (count, NUM_TYPES))
        if density is None and self.cfg.count_coefficients:  # the count model picks how many agents fit this map
            expected = expected_count(self.cfg.count_coefficients, maps[:1].cpu().numpy())[0]
            counts = np.maximum(np.random.default_rng([int(seed), 1]).poisson(expected, count) - len(tokens), 0)
        lanes = LaneIndex(map) if self.cfg.lane_snap_deg > 0 and map.num_lanes else None
        agents = self.sample_agents(maps, feats[None].expand(count, -1, -1), mask, counts, seed=seed,
                                    centre_is_ego=self.cfg.ego_flag, real=self.cfg.real_flag, lanes=[lanes] * count,
                                    type_counts=type_counts)
        ego_box = _ego_box(ego, self.horizon)
        scenes = []
        for i, a in enumerate(agents):
            if tokens:
                a = enforce_tokens(a, tokens, self.horizon, max_extra=None if counts[i] == UNSET else int(counts[i]),
                                   along_trajectories=self.cfg.trajectory_overlap)
            if len(a):
                t0 = self.horizon.t0_index
                boxes = np.concatenate([a.trajectory[:, t0], a.length[:, None], a.width[:, None]], axis=1)
                hit = boxes_overlap(boxes, ego_box)[:, 0]
                a = a.select(~hit)
            a.ids = [f"gen_{j}" for j in range(len(a))]
            scenes.append(Scene(map=map, agents=a, horizon=self.horizon, ego_index=-1,
                                meta={"generator": self.name, "seed": int(seed), "index": i,
                                      "density": density_json(density),
                                      "extra_agents": None if counts[i] == UNSET else int(counts[i]),
                                      "num_tokens": len(tokens)}))
        return scenes


def _split_rows(parts: list[tuple[torch.Tensor, Callable]]) -> Callable:
    """A denoiser over the whole batch from per-member denoisers of its rows (``parts``: row indices, denoiser)."""
    def denoise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        out = torch.empty_like(x)
        for rows, member in parts:
            out[rows] = member(x[rows], sigma[rows])
        return out
    return denoise


def most_typical_draw(draws: Sequence[Agents], horizon: Horizon) -> int:
    """Index of the draw whose agents at t = 0 have the least summed MMD (position, heading vector, velocity) to the
    other draws': minimum-Bayes-risk selection, which keeps a scene near the model's own spread of layouts on its map.
    Empty draws lose to any other; all empty gives 0."""
    t0 = horizon.t0_index
    feats = [(a.trajectory[:, t0, :2], np.stack([np.cos(a.trajectory[:, t0, 2]), np.sin(a.trajectory[:, t0, 2])], 1),
              a.velocity[:, t0]) for a in draws]
    filled = [i for i, a in enumerate(draws) if len(a)]
    if not filled:
        return 0
    risk = dict.fromkeys(filled, 0.0)
    for n, i in enumerate(filled):  # MMD is symmetric: each pair once
        for j in filled[n + 1:]:
            d = sum(mmd(x, y) for x, y in zip(feats[i], feats[j], strict=True))
            risk[i] += d
            risk[j] += d
    return min(filled, key=risk.__getitem__)


def _ego_box(ego: Agents | None, horizon: Horizon) -> np.ndarray:
    """(1, 5) ego box (x, y, heading, length, width) at t = 0 (the origin, facing +x, when no ego is given)."""
    if ego is None or len(ego) == 0:
        return np.array([[0.0, 0.0, 0.0, *DEFAULT_EGO_SIZE]])
    t0 = min(horizon.t0_index, ego.num_steps - 1)
    return np.array([[*ego.trajectory[0, t0], ego.length[0], ego.width[0]]], np.float64)


def _shortfall(agents: Agents, wanted: int, type_counts: np.ndarray | None) -> np.ndarray:
    """How many agents a decoded scene lacks: per agent type ((NUM_TYPES,)) with ``type_counts``, else one total."""
    if type_counts is None:
        return np.array([max(wanted - len(agents), 0)])
    have = np.bincount(np.asarray(agents.types, np.int64), minlength=NUM_TYPES)
    return np.maximum(np.asarray(type_counts, np.int64) - have, 0)


def _add_agents(kept: Agents, drawn: Agents, missing: np.ndarray | None, total: int, cfg: ModelConfig) -> Agents:
    """``kept`` plus the agents of a refill sampling ``drawn`` (most probable first) that are no rendering of a kept
    agent (matched within ``TOKEN_GATE_M``) and overlap none of the kept or added ones (the decoder's overlap rule),
    at most ``missing`` of each type (or ``total`` in all when ``missing`` is None)."""
    t0 = cfg.horizon.t0_index
    renderings = _gate_matches(drawn.trajectory[:, t0, :2], kept.trajectory[:, t0, :2])
    drawn = drawn.select(np.setdiff1d(np.arange(len(drawn)), list(renderings)))
    if len(drawn) == 0:
        return kept
    both = Agents.concatenate([kept, drawn])
    score = np.concatenate([np.full(len(kept), 2.0), np.linspace(1.0, 0.5, len(drawn))])  # kept first, then ranked
    quota = None
    if missing is not None:
        quota = (np.asarray(both.types, np.int64),
                 np.bincount(np.asarray(kept.types, np.int64), minlength=NUM_TYPES) + missing)
    order = remove_overlaps(both.trajectory[:, t0], both.length, both.width, score, cfg.overlap_scale,
                            other_poses=np.delete(both.trajectory, t0, axis=1) if cfg.trajectory_overlap else None,
                            quota=quota)
    added = np.sort(order[order >= len(kept)])[:total]
    return Agents.concatenate([kept, both.select(added)])


TOKEN_GATE_M = 4.0  # a generated agent this close to a token is the model's rendering of that token


def _gate_matches(a: np.ndarray, b: np.ndarray) -> dict[int, int]:
    """Hungarian pairs {row of ``a``: row of ``b``} of (N, 2) and (M, 2) centres, kept where within ``TOKEN_GATE_M``."""
    from scipy.optimize import linear_sum_assignment

    if len(a) == 0 or len(b) == 0:
        return {}
    d = np.linalg.norm(a[:, None] - b[None], axis=-1)
    rows, cols = linear_sum_assignment(d)
    return {int(r): int(c) for r, c in zip(rows, cols) if d[r, c] <= TOKEN_GATE_M}


def enforce_tokens(agents: Agents, tokens: list[AgentToken], horizon: Horizon, max_extra: int | None = None,
                   along_trajectories: bool = False) -> Agents:
    """Make every agent token appear exactly as described (the ``Generator`` contract).

    Each token is matched (Hungarian, centres within ``TOKEN_GATE_M``) to a generated agent, whose trajectory is moved
    rigidly onto the token's pose and takes the token's size and type; a token the model missed becomes an agent
    moving straight at its speeds. Generated agents overlapping a token's box at t = 0 (``along_trajectories``: at
    any step) are dropped, and at most ``max_extra`` other agents (the most probable) are kept; token agents come
    first.
    """
    t0, n = horizon.t0_index, len(tokens)
    pairs = _gate_matches(np.array([[t.x, t.y] for t in tokens]), agents.trajectory[:, t0, :2])
    traj = np.zeros((n, horizon.num_steps, 3), np.float32)
    times = horizon.times
    for k, tok in enumerate(tokens):
        if k in pairs:  # rigid move of the generated trajectory onto the token's pose
            src = agents.trajectory[pairs[k]]
            dh = tok.heading - src[t0, 2]
            c, s = np.cos(dh), np.sin(dh)
            rel = src[:, :2] - src[t0, :2]
            traj[k, :, 0] = tok.x + c * rel[:, 0] - s * rel[:, 1]
            traj[k, :, 1] = tok.y + s * rel[:, 0] + c * rel[:, 1]
            traj[k, :, 2] = wrap_angle(src[:, 2] + dh)
        else:  # straight line at the token's speeds (past at the current speed)
            end = max(horizon.future_s, 1e-6)
            v = np.where(times > 0, tok.speed + (tok.future_speed - tok.speed) * times / end, tok.speed)
            dist = np.where(times > 0, (tok.speed + v) / 2 * times, tok.speed * times)
            traj[k, :, 0] = tok.x + np.cos(tok.heading) * dist
            traj[k, :, 1] = tok.y + np.sin(tok.heading) * dist
            traj[k, :, 2] = tok.heading
    length = np.array([t.length for t in tokens], np.float32)
    width = np.array([t.width for t in tokens], np.float32)
    vel = np.gradient(traj[:, :, :2], horizon.step_s, axis=1) if horizon.num_steps > 1 else np.zeros((n, 1, 2))
    given = Agents(types=[int(t.agent_type) for t in tokens], length=length, width=width, trajectory=traj,
                   velocity=vel, valid=np.ones((n, horizon.num_steps), bool))
    rest = np.setdiff1d(np.arange(len(agents)), np.fromiter(pairs.values(), np.int64, len(pairs)))
    extra = agents.select(rest)
    if len(extra):
        def boxes(a: Agents, t: int) -> np.ndarray:
            return np.concatenate([a.trajectory[:, t], a.length[:, None], a.width[:, None]], axis=1)

        hit = np.zeros(len(extra), bool)
        for t in range(horizon.num_steps) if along_trajectories else [t0]:
            hit |= boxes_overlap(boxes(extra, t), boxes(given, t)).any(axis=1)
        extra = extra.select(np.flatnonzero(~hit)[:max_extra])
    return Agents.concatenate([given, extra])
