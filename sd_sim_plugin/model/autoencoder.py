"""Stage 1: a variational autoencoder from the agent raster to a small latent, decoded with the map into box proposals.

Encoder: agent raster (C_a, 64, 64) -> pixel-unshuffle stem (space-to-depth is ~3x cheaper on CPU than full-resolution
convolutions) -> latent mean / log-variance (C_z, 16, 16). Decoder: latent upsampled to the proposal grid,
concatenated with the downsampled map raster -> one proposal per output cell (see :mod:`sd_sim_plugin.model.boxes`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sd_sim_plugin.model.boxes import DELTA_SCALE, proposal_channels
from sd_sim_plugin.model.config import ModelConfig


class ResBlock(nn.Module):
    """Two 3 x 3 convolutions with GroupNorm and SiLU, plus the identity."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.GroupNorm(8, ch), nn.SiLU(), nn.Conv2d(ch, ch, 3, padding=1),
                                  nn.GroupNorm(8, ch), nn.SiLU(), nn.Conv2d(ch, ch, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x + body(x)."""
        return x + self.body(x)


def _stem(in_ch: int, out_ch: int, factor: int) -> nn.Sequential:
    """Space-to-depth by ``factor`` then a 3 x 3 convolution."""
    return nn.Sequential(nn.PixelUnshuffle(factor), nn.Conv2d(in_ch * factor * factor, out_ch, 3, padding=1))


class Encoder(nn.Module):
    """Agent raster -> latent mean and log-variance."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        w = cfg.ae_width
        factor = cfg.size_px // cfg.latent_size
        self.net = nn.Sequential(_stem(cfg.agent_channels, w, 2), ResBlock(w),
                                 *([nn.Conv2d(w, w, 3, stride=2, padding=1), ResBlock(w)] if factor == 4 else []),
                                 nn.GroupNorm(8, w), nn.SiLU(), nn.Conv2d(w, 2 * cfg.latent_channels, 1))
        if factor not in (2, 4):
            raise ValueError(f"raster {cfg.size_px} px / latent {cfg.latent_size} must be 2 or 4")

    def forward(self, agents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C_a, H, W) -> mean, log-variance (B, C_z, h, w)."""
        mean, logvar = self.net(agents).chunk(2, dim=1)
        return mean, logvar.clamp(-10.0, 5.0)


class Decoder(nn.Module):
    """Latent + map raster -> proposals (B, proposal_channels, G, G)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        w = cfg.ae_width
        up = cfg.grid // cfg.latent_size
        # depth-to-space keeps each cell's own features (nearest upsampling would blur 2 x 2 cells together)
        self.latent_in = nn.Sequential(nn.Conv2d(cfg.latent_channels, w * up * up, 3, padding=1), nn.PixelShuffle(up))
        self.map_in = _stem(cfg.map_channels, w // 2, cfg.size_px // cfg.grid)
        self.body = nn.Sequential(nn.Conv2d(w + w // 2, w, 3, padding=1), ResBlock(w), ResBlock(w),
                                  nn.GroupNorm(8, w), nn.SiLU())
        self.head = nn.Conv2d(w, proposal_channels(cfg), 1)
        with torch.no_grad():  # start with few boxes: existence prior ~1%
            self.head.bias.zero_()
            self.head.bias[0] = -4.6

    def forward(self, z: torch.Tensor, map_raster: torch.Tensor) -> torch.Tensor:
        """(B, C_z, h, w), (B, C_m, H, W) -> proposals."""
        return self.head(self.body(torch.cat([self.latent_in(z), self.map_in(map_raster)], dim=1)))


class AgentAutoencoder(nn.Module):
    """The stage-1 VAE: ``encode`` for latents, ``decode`` for proposals."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)

    def encode(self, agents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Agent raster -> latent mean, log-variance."""
        return self.encoder(agents)

    def decode(self, z: torch.Tensor, map_raster: torch.Tensor) -> torch.Tensor:
        """Latent + map -> proposals."""
        return self.decoder(z, map_raster)


def autoencoder_loss(proposals: torch.Tensor, targets: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor,
                     cfg: ModelConfig, kl_weight: float = 1e-4, pos_weight: float = 4.0) -> dict[str, torch.Tensor]:
    """Detection loss on cell-assigned targets plus the KL term; returns the parts and their weighted ``total``."""
    nd = cfg.num_deltas
    exist = targets[:, 0]
    pos = exist > 0.5
    cls = F.binary_cross_entropy_with_logits(proposals[:, 0], exist,
                                             pos_weight=torch.tensor(pos_weight, device=proposals.device))
    parts = {"cls": cls}
    p = proposals.permute(0, 2, 3, 1)[pos]  # (P, C)
    t = targets.permute(0, 2, 3, 1)[pos]
    if len(p):
        parts["heading"] = F.l1_loss(p[:, 1:3], t[:, 1:3])
        parts["box"] = F.l1_loss(p[:, 3:7], t[:, 3:7])
        d_pred, d_true = p[:, 7:7 + 3 * nd].reshape(-1, nd, 3), t[:, 7:7 + 3 * nd].reshape(-1, nd, 3)
        valid = t[:, 7 + 3 * nd:7 + 4 * nd]
        err = (d_pred - d_true).abs() * torch.tensor([1.0, 1.0, 2.0], device=p.device)
        parts["trajectory"] = (err.sum(-1) * valid).sum() / valid.sum().clamp(min=1.0)
        # chained positions (in the t = 0 heading frame) so errors do not accumulate along the trajectory
        fut = cfg.horizon.num_future
        chain_err = ((d_pred[:, :fut, :2].cumsum(1) - d_true[:, :fut, :2].cumsum(1)).norm(dim=-1) * valid[:, :fut])
        parts["chain"] = chain_err.sum() / valid[:, :fut].sum().clamp(min=1.0) * (DELTA_SCALE / 10.0)
        parts["type"] = F.cross_entropy(p[:, 7 + 3 * nd:], t[:, -1].long())
    else:
        zero = proposals.sum() * 0.0
        parts.update(heading=zero, box=zero, trajectory=zero, chain=zero, type=zero)
    parts["kl"] = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).mean()
    parts["total"] = (5.0 * parts["cls"] + parts["heading"] + 2.0 * parts["box"] + parts["trajectory"] + parts["chain"]
                      + 0.2 * parts["type"] + kl_weight * parts["kl"])
    return parts
