"""Stage 2: the token-conditioned latent denoiser (EDM-preconditioned diffusers U-Net) and its map encoder.

The map raster goes through its own encoder down to the latent resolution and is concatenated with the noisy latent.
Agent tokens and the global scene token each go through their own MLP into a shared embedding and enter the U-Net
by cross-attention (every latent pixel is a query); padding tokens are masked out.
"""

from __future__ import annotations

import torch
from diffusers import UNet2DConditionModel
from torch import nn

from sd_sim_plugin.model.autoencoder import ResBlock, _stem
from sd_sim_plugin.model.config import ModelConfig
from sd_sim_plugin.model.edm import preconditioning


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
        self.unet = UNet2DConditionModel(
            sample_size=cfg.latent_size, in_channels=cfg.latent_channels + cfg.map_embed_channels,
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

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, map_embed: torch.Tensor, tokens: torch.Tensor,
                token_mask: torch.Tensor) -> torch.Tensor:
        """Denoised latent D(x) for noisy latents ``x`` at noise levels ``sigma`` (B,)."""
        c_skip, c_out, c_in, c_noise = (c.view(-1, 1, 1, 1) for c in preconditioning(sigma))
        f = self.unet(torch.cat([c_in * x, map_embed], dim=1), c_noise.view(-1) * self.cfg.timestep_scale,
                      encoder_hidden_states=tokens, encoder_attention_mask=token_mask.float()).sample
        return c_skip * x + c_out * f
