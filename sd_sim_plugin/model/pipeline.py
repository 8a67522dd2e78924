"""``ScenarioDiffusionGenerator``: map in -> BEV raster -> latent sampling -> decoding -> agents, behind ``Generator``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sd_sim_plugin.model.autoencoder import AgentAutoencoder
from sd_sim_plugin.model.boxes import proposals_to_agents
from sd_sim_plugin.model.checkpoint import WEIGHT_FILES, load_config, load_weights
from sd_sim_plugin.model.config import ModelConfig
from sd_sim_plugin.model.denoiser import LatentDenoiser
from sd_sim_plugin.model.edm import karras_sigmas, sample
from sd_sim_plugin.model.tokens import UNSET, agent_token_features, global_token_features
from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.raster.bev import RasterConfig, rasterise_map
from sd_sim_plugin.scene.geometry import boxes_overlap
from sd_sim_plugin.scene.tokens import AgentToken
from sd_sim_plugin.scene.types import Agents, Horizon, MapGeometry, Scene

DEFAULT_EGO_SIZE = (4.5, 1.9)  # length, width used when the caller gives no ego


class ScenarioDiffusionGenerator:
    """The trained Scenario Diffusion model as a :class:`~sd_sim_plugin.generators.base.Generator`."""

    name = "diffusion"

    def __init__(self, cfg: ModelConfig, autoencoder: AgentAutoencoder, denoiser: LatentDenoiser,
                 device: str = "cpu", heun: bool = False) -> None:
        self.cfg = cfg
        self.device = device
        self.autoencoder = autoencoder.to(device).eval()
        self.denoiser = denoiser.to(device).eval()
        self.heun = heun
        self.raster = RasterConfig(cfg.size_px, cfg.resolution_m)
        self.horizon: Horizon = cfg.horizon
        self._mean = torch.tensor(cfg.latent_mean, device=device).view(1, -1, 1, 1)
        self._std = torch.tensor(cfg.latent_std, device=device).view(1, -1, 1, 1)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "cpu") -> ScenarioDiffusionGenerator:
        """Load a trained checkpoint folder (config.json + both stages' safetensors weights)."""
        cfg, _ = load_config(path)
        if not cfg.latent_mean or len(cfg.latent_mean) != cfg.latent_channels:
            raise SdSimError(f"{Path(path) / 'config.json'}: no latent statistics; the diffusion stage was not trained")
        ae = load_weights(AgentAutoencoder(cfg), Path(path) / WEIGHT_FILES["autoencoder"])
        net = load_weights(LatentDenoiser(cfg), Path(path) / WEIGHT_FILES["denoiser"])
        return cls(cfg, ae, net, device=device)

    @torch.inference_mode()
    def sample_agents(self, maps: torch.Tensor, feats: torch.Tensor, mask: torch.Tensor, counts: np.ndarray,
                      seed: int = 0, steps: int | None = None) -> list[Agents]:
        """Batched core: map rasters (B, C_m, H, W), token features / mask, global counts (B,) -> agents per scene."""
        b = len(maps)
        gen = torch.Generator(device="cpu").manual_seed(int(seed))
        noise = torch.randn((b, self.cfg.latent_channels, self.cfg.latent_size, self.cfg.latent_size),
                            generator=gen).to(self.device)
        map_embed = self.denoiser.map_encoder(maps)
        tokens, tmask = self.denoiser.embed_tokens(feats.to(self.device), mask.to(self.device),
                                                   torch.from_numpy(global_token_features(counts, self.cfg.tokens))
                                                   .to(self.device))
        sigmas = karras_sigmas(steps or self.cfg.sampler_steps, self.cfg.sigma_min, self.cfg.sigma_max,
                               self.cfg.rho).to(self.device)
        z = sample(lambda x, s: self.denoiser(x, s, map_embed, tokens, tmask), noise, sigmas, heun=self.heun)
        proposals = self.autoencoder.decode(z * self._std + self._mean, maps).cpu().numpy()
        return [proposals_to_agents(p, self.cfg) for p in proposals]

    def generate(self, map: MapGeometry, *, ego: Agents | None = None, agent_tokens: list[AgentToken] | None = None,
                 density: int | None = None, seed: int = 0, count: int = 1) -> list[Scene]:
        """Generate ``count`` scenes on ``map`` (ego frame); agents overlapping the ego are dropped."""
        maps = torch.from_numpy(rasterise_map(map, self.raster)).to(self.device)[None].expand(count, -1, -1, -1)
        tokens = list(agent_tokens or [])[: self.cfg.tokens.max_tokens]
        feats = torch.from_numpy(agent_token_features(tokens, self.cfg.tokens))
        if len(tokens) == 0:
            feats = torch.zeros(1, self.cfg.tokens.agent_dim)
        mask = torch.full((count, len(feats)), bool(tokens))
        counts = np.full(count, UNSET if density is None else max(int(density), 0), np.int64)
        agents = self.sample_agents(maps, feats[None].expand(count, -1, -1), mask, counts, seed=seed)
        ego_box = _ego_box(ego, self.horizon)
        scenes = []
        for i, a in enumerate(agents):
            if len(a):
                t0 = self.horizon.t0_index
                boxes = np.concatenate([a.trajectory[:, t0], a.length[:, None], a.width[:, None]], axis=1)
                hit = boxes_overlap(boxes, ego_box)[:, 0]
                a = a.select(~hit)
            a.ids = [f"gen_{j}" for j in range(len(a))]
            scenes.append(Scene(map=map, agents=a, horizon=self.horizon, ego_index=-1,
                                meta={"generator": self.name, "seed": int(seed), "index": i,
                                      "density": density, "num_tokens": len(tokens)}))
        return scenes


def _ego_box(ego: Agents | None, horizon: Horizon) -> np.ndarray:
    """(1, 5) ego box (x, y, heading, length, width) at t = 0 (the origin, facing +x, when no ego is given)."""
    if ego is None or len(ego) == 0:
        return np.array([[0.0, 0.0, 0.0, *DEFAULT_EGO_SIZE]])
    t0 = min(horizon.t0_index, ego.num_steps - 1)
    return np.array([[*ego.trajectory[0, t0], ego.length[0], ego.width[0]]], np.float64)
