"""Stage 2: the token-conditioned latent denoiser (EDM-preconditioned diffusers U-Net) and its map encoder.

Spatial conditioning, concatenated with the noisy latent: the map raster through its own encoder down to the latent
resolution, the agent tokens drawn into a raster, and the ego-frame position of every latent cell.
Agent tokens and the global scene token each go through their own MLP into a shared embedding and enter the U-Net
by cross-attention (every latent pixel is a query); padding tokens are masked out.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from diffusers import UNet2DConditionModel
from torch import nn

from sd_sim_plugin.model.autoencoder import ResBlock, _stem
from sd_sim_plugin.model.boxes import cell_centres
from sd_sim_plugin.model.config import ModelConfig
from sd_sim_plugin.model.edm import preconditioning
from sd_sim_plugin.model.tokens import AGENT_TOKEN_DIM, POSITION_DIM, position_features


class MapEncoder(nn.Module):
    """Map raster (C_m, H, W) -> (map_embed_channels, latent_size, latent_size)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        w = 32
        factor = cfg.size_px // cfg.latent_size
        layers: list[nn.Module] = [_stem(cfg.map_channels, w, 2), ResBlock(w)]
        if factor == 4:
            layers += [nn.Conv2d(w, w, 3, stride=2, padding=1), ResBlock(w)]
        self.net = nn.Sequential(*layers, nn.GroupNorm(8, w), nn.SiLU(), nn.Conv2d(w, cfg.map_embed_channels, 1))

    def forward(self, map_raster: torch.Tensor) -> torch.Tensor:
        """Encode the map."""
        return self.net(map_raster)


def latent_position_grid(cfg: ModelConfig) -> torch.Tensor:
    """(POSITION_DIM, L, L) position features of every latent cell centre (none when ``position_features`` is off).

    Same layout as the agent tokens' position features, and the same axes as the raster: row 0 is the front (+x),
    column 0 the left (+y).
    """
    n = cfg.latent_size
    if not cfg.position_features:
        return torch.zeros(0, n, n)
    xy = cell_centres(cfg, n)
    return torch.from_numpy(position_features(xy, cfg.tokens.half_extent_m)).permute(2, 0, 1).contiguous()


TOKEN_RASTER_CHANNELS = 3 + AGENT_TOKEN_DIM - POSITION_DIM  # presence, offset in the cell (2), the rest of the token


def token_raster(agent_feats: torch.Tensor, agent_mask: torch.Tensor, cfg: ModelConfig) -> torch.Tensor:
    """Agent-token features (B, N, D_a) and mask (B, N) -> (B, C, latent, latent) token raster.

    Each token is drawn into the output-grid cell holding its position (presence 1, its offset from the cell centre
    in cells, and its non-position features); the grid is then folded space-to-depth to the latent size. Tokens
    outside the raster are left out; of two tokens in one cell the later wins (cross-attention still sees both).
    """
    b, n, _ = agent_feats.shape
    g = cfg.grid
    out = agent_feats.new_zeros(b, g * g, TOKEN_RASTER_CHANNELS)
    xy = agent_feats[..., :2] * cfg.tokens.half_extent_m
    half = g * cfg.cell_m / 2
    rc = (half - xy) / cfg.cell_m  # continuous (row, col): row 0 is the front (+x), column 0 the left (+y)
    cell = rc.floor()
    inside = agent_mask & (cell >= 0).all(-1) & (cell < g).all(-1)
    flat = (cell[..., 0] * g + cell[..., 1]).long().clamp(0, g * g - 1)
    values = torch.cat([torch.ones_like(xy[..., :1]), rc - cell - 0.5, agent_feats[..., POSITION_DIM:]], dim=-1)
    bi, ti = inside.nonzero(as_tuple=True)
    out[bi, flat[bi, ti]] = values[bi, ti]
    raster = out.view(b, g, g, -1).permute(0, 3, 1, 2)
    return nn.functional.pixel_unshuffle(raster, g // cfg.latent_size)


def _mlp(d_in: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_out), nn.SiLU(), nn.Linear(d_out, d_out))


class LatentDenoiser(nn.Module):
    """D(x; sigma, map, tokens) with EDM preconditioning around a diffusers ``UNet2DConditionModel``."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.map_encoder = MapEncoder(cfg)
        self.agent_mlp = _mlp(cfg.tokens.agent_dim, cfg.token_dim)
        self.global_mlp = _mlp(cfg.tokens.global_dim, cfg.token_dim)
        self.register_buffer("position_grid", latent_position_grid(cfg), persistent=False)
        token_channels = TOKEN_RASTER_CHANNELS * (cfg.grid // cfg.latent_size) ** 2 if cfg.token_raster else 0
        self.unet = UNet2DConditionModel(
            sample_size=cfg.latent_size,
            in_channels=cfg.latent_channels + cfg.map_embed_channels + len(self.position_grid) + token_channels,
            out_channels=cfg.latent_channels, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            block_out_channels=tuple(cfg.unet_channels), layers_per_block=1, cross_attention_dim=cfg.token_dim,
            attention_head_dim=cfg.attention_head_dim, norm_num_groups=8,
        )

    def embed_tokens(self, agent_feats: torch.Tensor, agent_mask: torch.Tensor, global_feats: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, N, D_a), (B, N) bool, (B, D_g) -> cross-attention keys (B, 1 + N, token_dim) and their mask."""
        tokens = torch.cat([self.global_mlp(global_feats)[:, None], self.agent_mlp(agent_feats)], dim=1)
        mask = torch.cat([torch.ones_like(agent_mask[:, :1]), agent_mask], dim=1)
        return tokens, mask

    def spatial_condition(self, map_raster: torch.Tensor, agent_feats: torch.Tensor, agent_mask: torch.Tensor
                          ) -> torch.Tensor:
        """What is concatenated with the noisy latent: map encoding, token raster, cell positions (B, C, L, L)."""
        parts = [self.map_encoder(map_raster)]
        if self.cfg.token_raster:
            parts.append(token_raster(agent_feats, agent_mask, self.cfg))
        parts.append(self.position_grid[None].expand(len(map_raster), -1, -1, -1))
        return torch.cat(parts, dim=1)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, condition: torch.Tensor, tokens: torch.Tensor,
                token_mask: torch.Tensor, unet: UNetCall | None = None) -> torch.Tensor:
        """Denoised latent D(x) for noisy latents ``x`` at noise levels ``sigma`` (B,), given the spatial
        ``condition`` (:meth:`spatial_condition`) and the cross-attention ``tokens`` (:meth:`embed_tokens`).

        ``unet``: a stand-in for the U-Net with :meth:`unet_call`'s signature (the traced one of
        :func:`traced_unet`); the module's own U-Net when None."""
        c_skip, c_out, c_in, c_noise = (c.view(-1, 1, 1, 1) for c in preconditioning(sigma))
        f = (unet or self.unet_call)(torch.cat([c_in * x, condition], dim=1),
                                     c_noise.view(-1) * self.cfg.timestep_scale, tokens, token_mask.float())
        return c_skip * x + c_out * f

    def unet_call(self, sample: torch.Tensor, timestep: torch.Tensor, tokens: torch.Tensor, token_mask: torch.Tensor
                  ) -> torch.Tensor:
        """The U-Net as (sample, timestep, tokens, float mask) -> output tensor."""
        return _call_unet(self.unet, sample, timestep, tokens, token_mask)


def _call_unet(unet: UNet2DConditionModel, sample: torch.Tensor, timestep: torch.Tensor, tokens: torch.Tensor,
               token_mask: torch.Tensor) -> torch.Tensor:
    return unet(sample, timestep, encoder_hidden_states=tokens, encoder_attention_mask=token_mask,
                return_dict=False)[0]


UNetCall = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class _UNetCallModule(nn.Module):
    """:meth:`LatentDenoiser.unet_call` as a module, which is what ``torch.jit.trace`` takes."""

    def __init__(self, denoiser: LatentDenoiser) -> None:
        super().__init__()
        self.unet = denoiser.unet

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, tokens: torch.Tensor, token_mask: torch.Tensor
                ) -> torch.Tensor:
        return _call_unet(self.unet, sample, timestep, tokens, token_mask)


def traced_unet(denoiser: LatentDenoiser, example: tuple[torch.Tensor, ...]) -> torch.jit.ScriptModule:
    """The denoiser's U-Net traced on ``example`` (sample, timestep, tokens, mask) and frozen, for inference.

    diffusers' U-Net spends much of a small batch in Python (module dispatch, ``inspect.signature`` in every attention
    call); the traced graph skips it: 1.5x faster per evaluation at batch 1 on the 2-core CPU, same outputs. The
    graph holds no shape-dependent branches for our inputs (fixed latent size, timestep of shape (B,)), so it serves
    any batch size and token count. The frozen copy keeps its own weights: trace again after changing them.
    """
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # diffusers' shape checks, constant for our inputs
        # torch 2.13 marks torch.jit deprecated in favour of torch.compile / torch.export, which need a compiler at
        # run time or minutes of export; tracing is kept while it works (the generator falls back to eager)
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(_UNetCallModule(denoiser).eval(), example, check_trace=False)
        return torch.jit.freeze(traced)
