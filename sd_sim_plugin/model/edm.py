"""EDM (Karras et al. 2022): preconditioning, training noise and loss weight, and the Euler / Heun ODE samplers."""

from __future__ import annotations

from collections.abc import Callable

import torch

SIGMA_DATA = 1.0  # latents are standardised per channel


def preconditioning(sigma: torch.Tensor, sigma_data: float = SIGMA_DATA) -> tuple[torch.Tensor, ...]:
    """c_skip, c_out, c_in, c_noise for noise levels ``sigma`` (any shape)."""
    s2, d2 = sigma ** 2, sigma_data ** 2
    c_skip = d2 / (s2 + d2)
    c_out = sigma * sigma_data / (s2 + d2).sqrt()
    c_in = 1.0 / (s2 + d2).sqrt()
    c_noise = sigma.log() / 4.0
    return c_skip, c_out, c_in, c_noise


def loss_weight(sigma: torch.Tensor, sigma_data: float = SIGMA_DATA) -> torch.Tensor:
    """lambda(sigma) = 1 / c_out^2, so every noise level contributes a unit-scale loss."""
    return (sigma ** 2 + sigma_data ** 2) / (sigma * sigma_data) ** 2


def sample_training_sigma(n: int, p_mean: float, p_std: float, generator: torch.Generator | None = None,
                          device: str | torch.device = "cpu") -> torch.Tensor:
    """log(sigma) ~ N(p_mean, p_std^2)."""
    return (torch.randn(n, generator=generator, device=device) * p_std + p_mean).exp()


def karras_sigmas(steps: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> torch.Tensor:
    """The EDM noise schedule from sigma_max down to sigma_min, with a final 0 (steps + 1 values)."""
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    inv = sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))
    return torch.cat([inv ** rho, torch.zeros(1, dtype=torch.float64)]).float()


Denoise = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_noisy, sigma (B,)) -> D(x)


def sample(denoise: Denoise, noise: torch.Tensor, sigmas: torch.Tensor, heun: bool = False) -> torch.Tensor:
    """Integrate the probability-flow ODE dx/dsigma = (x - D(x)) / sigma from ``noise * sigmas[0]`` to sigma = 0.

    Euler uses one network evaluation per step; Heun adds a correction (two, except the last step).
    """
    x = noise * sigmas[0]
    b = x.shape[0]
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        d = (x - denoise(x, s.expand(b))) / s
        x_next = x + (s_next - s) * d
        if heun and s_next > 0:
            d2 = (x_next - denoise(x_next, s_next.expand(b))) / s_next
            x_next = x + (s_next - s) * (d + d2) / 2
        x = x_next
    return x
