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


SOLVERS = ("euler", "heun", "dpmpp2m", "dpmpp2m_sde")


def classifier_free_guidance(conditional: Denoise, paired: Denoise, scale: float,
                             interval: tuple[float, float]) -> Denoise:
    """Classifier-free guidance (Ho & Salimans 2022) applied in a limited noise interval (Kynkaanniemi et al. 2024).

    For sigma in (low, high]: D = D_u + scale * (D_c - D_u), where ``paired`` denoises ``[x; x]`` (batch doubled)
    with the conditional inputs first and the unconditional ones second; elsewhere ``conditional`` alone (one
    network evaluation, not two). ``scale`` 1 is the conditional model.
    """
    low, high = interval

    def denoise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        if not low < float(sigma[0]) <= high:
            return conditional(x, sigma)
        cond, uncond = paired(torch.cat([x, x]), torch.cat([sigma, sigma])).chunk(2)
        return uncond + scale * (cond - uncond)
    return denoise


def network_evaluations(solver: str, steps: int) -> int:
    """Denoiser calls per sample."""
    return 2 * steps - 1 if solver == "heun" else steps


def sample(denoise: Denoise, noise: torch.Tensor, sigmas: torch.Tensor, solver: str = "euler",
           generator: torch.Generator | None = None) -> torch.Tensor:
    """Integrate the probability-flow ODE dx/dsigma = (x - D(x)) / sigma from ``noise * sigmas[0]`` to sigma = 0.

    ``euler``: one network evaluation per step. ``heun``: adds a correction (two evaluations, except the last step).
    ``dpmpp2m``: DPM-Solver++(2M) (Lu et al. 2022), second order from the previous step's denoised latent, so one
    evaluation per step (the form of k-diffusion's ``sample_dpmpp_2m``). ``dpmpp2m_sde``: its stochastic form (the
    reverse SDE, eta 1, midpoint correction; k-diffusion's ``sample_dpmpp_2m_sde``), fresh noise from ``generator``
    at every step: the same cost, and each step can still leave a mode the previous one averaged towards.
    """
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r} (choose from {', '.join(SOLVERS)})")
    x = noise * sigmas[0]
    b = x.shape[0]
    previous = None  # DPM-Solver++(2M): the last step's denoised latent
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(x, s.expand(b))
        if solver in ("dpmpp2m", "dpmpp2m_sde"):
            if s_next == 0:
                x = denoised
            else:
                h = s.log() - s_next.log()  # step in t = -log(sigma)
                r = None if previous is None else (sigmas[i - 1].log() - s.log()) / h
                if solver == "dpmpp2m":
                    target = denoised if r is None else (1 + 1 / (2 * r)) * denoised - previous / (2 * r)
                    x = (s_next / s) * x - torch.expm1(-h) * target
                else:
                    x = (s_next / s) * torch.exp(-h) * x - torch.expm1(-2 * h) * denoised
                    if r is not None:
                        x = x - 0.5 * torch.expm1(-2 * h) / r * (denoised - previous)
                    fresh = torch.randn(x.shape, generator=generator).to(x.device)
                    x = x + fresh * s_next * torch.sqrt(-torch.expm1(-2 * h))
            previous = denoised
            continue
        d = (x - denoised) / s
        x_next = x + (s_next - s) * d
        if solver == "heun" and s_next > 0:
            d2 = (x_next - denoise(x_next, s_next.expand(b))) / s_next
            x_next = x + (s_next - s) * (d + d2) / 2
        x = x_next
    return x
