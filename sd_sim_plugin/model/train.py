"""Training loops for both stages: fixed seeds, periodic validation, checkpoints every few minutes, resume.

Stage 1 (``autoencoder``) trains the VAE on cached rasters. Stage 2 (``diffusion``) encodes every window once with
the frozen encoder, standardises the latents per channel (stored in the config) and trains the EDM denoiser with
token dropout and EMA weights.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.model.autoencoder import AgentAutoencoder, autoencoder_loss
from sd_sim_plugin.model.boxes import proposals_to_agents
from sd_sim_plugin.model.cache import TrainingArrays
from sd_sim_plugin.model.checkpoint import (WEIGHT_FILES, load_config, load_tensors, load_weights, save_config,
                                            save_weights)
from sd_sim_plugin.model.config import ModelConfig
from sd_sim_plugin.model.count import fit_count_model
from sd_sim_plugin.model.denoiser import LatentDenoiser
from sd_sim_plugin.model.edm import loss_weight, sample_training_sigma
from sd_sim_plugin.model.evaluate import detection_scores
from sd_sim_plugin.model.tokens import DOMAIN_GLOBAL_DIM, drop_tokens, global_token_features, has_domain_flag
from sd_sim_plugin.scene.types import Agents


@dataclass
class TrainOptions:
    """Knobs shared by both stages."""

    steps: int = 2000
    batch_size: int = 32
    lr: float = 2e-3
    seed: int = 0
    resume: bool = False
    device: str = "cpu"
    eval_every: int = 250
    save_every_s: float = 180.0
    ema_decay: float = 0.999
    progress: bool = True
    init: Path | None = None  # fine-tune: the checkpoint whose weights this stage starts from


def pick_device(name: str | None) -> str:
    """``cuda`` when present unless told otherwise."""
    if name:
        return name
    return "cuda" if torch.cuda.is_available() else "cpu"


def _to(x: np.ndarray, device: str) -> torch.Tensor:
    return torch.from_numpy(np.asarray(x, dtype=np.float32)).to(device)


def decode_targets(targets: np.ndarray, cfg: ModelConfig) -> list[Agents]:
    """Ground-truth agents back from target grids (through the same decoding as predictions)."""
    out = []
    for t in targets.astype(np.float32):
        prop = np.zeros((7 + 3 * cfg.num_deltas + 3, cfg.grid, cfg.grid), np.float32)
        prop[0] = np.where(t[0] > 0.5, 20.0, -20.0)
        prop[1:7 + 3 * cfg.num_deltas] = t[1:7 + 3 * cfg.num_deltas]
        types = t[-1].astype(int)
        for k in range(3):
            prop[7 + 3 * cfg.num_deltas + k] = (types == k) * 10.0
        out.append(proposals_to_agents(prop, cfg, threshold=0.5))
    return out


def _optimizer_state(opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """Adam moments as a flat tensor dict (safetensors cannot hold nested state)."""
    flat = {}
    for i, st in opt.state_dict()["state"].items():
        for k, v in st.items():
            flat[f"opt.{i}.{k}"] = v if torch.is_tensor(v) else torch.tensor(v)
    return flat


def _load_optimizer_state(opt: torch.optim.Optimizer, flat: dict[str, torch.Tensor]) -> None:
    sd = opt.state_dict()
    state: dict[int, dict] = {}
    for key, v in flat.items():
        if key.startswith("opt."):
            _, i, k = key.split(".", 2)
            state.setdefault(int(i), {})[k] = v
    sd["state"] = state
    opt.load_state_dict(sd)


class _Trainer:
    """Shared loop: batches by step-seeded RNG (so a resumed run sees the same batches), saves, validation."""

    stage = ""

    def __init__(self, cfg: ModelConfig, out: Path, opts: TrainOptions, modules: dict[str, torch.nn.Module],
                 params: list[torch.nn.Parameter]) -> None:
        self.cfg, self.out, self.opts = cfg, out, opts
        self.modules = modules
        self.opt = torch.optim.AdamW(params, lr=opts.lr, weight_decay=1e-4)
        self.step = 0
        self.elapsed_s = 0.0
        self.history: list[dict] = []

    @property
    def state_file(self) -> Path:
        return self.out / f"train_state_{self.stage}.safetensors"

    def save_state(self) -> None:
        """Raw weights, optimiser moments and the step, for ``--resume``."""
        flat = {f"{name}.{k}": v for name, m in self.modules.items() for k, v in m.state_dict().items()}
        flat.update(_optimizer_state(self.opt))
        save_weights(flat, self.state_file)
        init = str(self.opts.init) if self.opts.init is not None else None
        (self.out / f"train_state_{self.stage}.json").write_text(json.dumps(
            {"step": self.step, "elapsed_s": self.elapsed_s, "history": self.history, "init": init}))

    def load_state(self) -> None:
        """Continue from the last saved state (raises when there is none)."""
        meta = self.out / f"train_state_{self.stage}.json"
        if not meta.exists() or not self.state_file.exists():
            raise SdSimError(f"{self.out}: nothing to resume for stage {self.stage} (no {self.state_file.name})")
        flat = load_tensors(self.state_file)
        for name, m in self.modules.items():
            prefix = f"{name}."
            m.load_state_dict({k[len(prefix):]: v for k, v in flat.items() if k.startswith(prefix)})
        _load_optimizer_state(self.opt, flat)
        info = json.loads(meta.read_text())
        self.step, self.elapsed_s, self.history = info["step"], info["elapsed_s"], info["history"]
        if self.opts.init is None and info.get("init"):  # a resumed fine-tune still records where it started
            self.opts.init = Path(info["init"])

    def batch_indices(self, n: int) -> np.ndarray:
        return np.random.default_rng([self.opts.seed, self.step]).integers(0, n, self.opts.batch_size)

    def run(self, train_step: Callable[[], dict[str, float]], validate: Callable[[], dict[str, float]],
            publish: Callable[[], None]) -> list[dict]:
        """Train until ``opts.steps``: save state and publish weights every ``save_every_s`` and at the end."""
        last_save = time.time()
        bar = tqdm(total=self.opts.steps, initial=self.step, desc=f"train {self.stage}", disable=not self.opts.progress)
        while self.step < self.opts.steps:
            t = time.time()
            lr = self.opts.lr * min(1.0, (self.step + 1) / 100) * (0.1 + 0.9 * (1 - self.step / self.opts.steps))
            for g in self.opt.param_groups:
                g["lr"] = lr
            logs = train_step()
            self.step += 1
            self.elapsed_s += time.time() - t
            bar.update(1)
            bar.set_postfix({k: f"{v:.3g}" for k, v in logs.items()})
            if self.step % self.opts.eval_every == 0 or self.step == self.opts.steps:
                record = {"step": self.step, "elapsed_s": round(self.elapsed_s, 1), **logs, **validate()}
                self.history.append(record)
                bar.write(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in record.items()}))
            if time.time() - last_save > self.opts.save_every_s or self.step == self.opts.steps:
                publish()
                self.save_state()
                last_save = time.time()
        bar.close()
        return self.history


def train_autoencoder(train: TrainingArrays, val: TrainingArrays | None, out: str | Path, opts: TrainOptions,
                      cfg: ModelConfig | None = None) -> list[dict]:
    """Stage 1: train the VAE into ``out`` (config.json + autoencoder.safetensors)."""
    out = Path(out)
    torch.manual_seed(opts.seed)
    if cfg is None:
        cfg = ModelConfig(map_channels=train.map.shape[1], agent_channels=train.agents.shape[1])
    if opts.resume:
        cfg, _ = load_config(out)
    elif opts.init is not None:
        cfg, _ = load_config(opts.init)
    ae = AgentAutoencoder(cfg).to(opts.device)
    if opts.init is not None and not opts.resume:
        load_weights(ae, Path(opts.init) / WEIGHT_FILES["autoencoder"])
    trainer = _Trainer(cfg, out, opts, {"autoencoder": ae}, list(ae.parameters()))
    trainer.stage = "autoencoder"
    if opts.resume:
        trainer.load_state()
    val = val if val is not None else train
    gen = torch.Generator(device=opts.device).manual_seed(opts.seed)

    def step() -> dict[str, float]:
        ae.train()
        idx = np.sort(trainer.batch_indices(len(train)))
        agents, maps, targets = (_to(a[idx], opts.device) for a in (train.agents, train.map, train.targets))
        mean, logvar = ae.encode(agents)
        z = mean + torch.randn(mean.shape, generator=gen, device=opts.device) * (0.5 * logvar).exp()
        parts = autoencoder_loss(ae.decode(z, maps), targets, mean, logvar, cfg)
        trainer.opt.zero_grad(set_to_none=True)
        parts["total"].backward()
        torch.nn.utils.clip_grad_norm_(ae.parameters(), 1.0)
        trainer.opt.step()
        return {k: v.item() for k, v in parts.items() if k in ("total", "cls", "box", "trajectory")}

    def validate() -> dict[str, float]:
        idx = np.arange(min(len(val), 128))
        scores = reconstruction_scores(ae, val, idx, cfg, opts.device)
        return {f"val_{k}": v for k, v in scores.items()}

    def publish() -> None:
        save_weights(ae, out / WEIGHT_FILES["autoencoder"])
        save_config(out, cfg, {"autoencoder": _training_record(trainer, opts, train)})

    out.mkdir(parents=True, exist_ok=True)
    return trainer.run(step, validate, publish)


@torch.inference_mode()
def reconstruction_scores(ae: AgentAutoencoder, data: TrainingArrays, idx: np.ndarray, cfg: ModelConfig,
                          device: str = "cpu") -> dict[str, float]:
    """Encode -> decode (posterior mean) -> boxes; detection scores against the cached ground truth."""
    ae.eval()
    preds = []
    for start in range(0, len(idx), 64):
        sl = idx[start:start + 64]
        mean, _ = ae.encode(_to(data.agents[sl], device))
        prop = ae.decode(mean, _to(data.map[sl], device)).cpu().numpy()
        preds += [proposals_to_agents(p, cfg) for p in prop]
    return detection_scores(preds, decode_targets(np.asarray(data.targets[idx]), cfg), cfg.horizon.t0_index)


@torch.inference_mode()
def encode_latents(ae: AgentAutoencoder, data: TrainingArrays, device: str = "cpu") -> torch.Tensor:
    """Posterior-mean latents of every window (N, C_z, h, w)."""
    ae.eval()
    chunks = [ae.encode(_to(data.agents[i:i + 256], device))[0].cpu() for i in range(0, len(data), 256)]
    return torch.cat(chunks)


def token_batch(data: TrainingArrays, idx: np.ndarray, cfg: ModelConfig, rng: np.random.Generator | None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray]:
    """Agent-token features (B, N, D), mask (B, N), global features (B, D_g) and global counts.

    With ``rng``: token dropout (training). Without: every token kept and the global token 0 (all agents given).
    """
    b, m = len(idx), cfg.tokens.max_tokens
    feats = np.zeros((b, m, cfg.tokens.agent_dim), np.float32)
    mask = np.zeros((b, m), bool)
    counts = np.zeros(b, np.int64)
    for j, i in enumerate(idx):
        n = int(data.num_tokens[i])
        keep, counts[j] = drop_tokens(n, rng) if rng is not None else (np.ones(n, bool), 0)
        kept = np.asarray(data.tokens[i, :n], np.float32)[keep]
        feats[j, : len(kept)] = kept
        mask[j, : len(kept)] = True
    width = max(int(mask.sum(1).max()), 1)  # trim padding: attention cost grows with the key count
    return (torch.from_numpy(feats[:, :width]), torch.from_numpy(mask[:, :width]),
            torch.from_numpy(global_token_features(counts, cfg.tokens, np.asarray(data.centre_is_ego)[idx],
                                                   data.real_flags[idx])), counts)


def train_diffusion(train: TrainingArrays, val: TrainingArrays | None, out: str | Path, opts: TrainOptions,
                    timestep_scale: float = 1.0, unet_channels: tuple[int, ...] | None = None,
                    mirror_left_hand: bool = False, domain_flag: bool = False) -> list[dict]:
    """Stage 2: train the token-conditioned latent denoiser on the frozen stage-1 encoder's latents.

    A fresh run takes the current stage-2 recipe (:meth:`ModelConfig.for_new_denoiser`) and, when given,
    ``unet_channels`` (else the folder's U-Net widths); ``mirror_left_hand`` records that ``train`` was cached with
    left-hand windows mirrored (``ModelConfig.mirror_left_hand``); ``domain_flag`` gives a new or fine-tuned stage 2
    the global token's real-data feature (a fine-tune's starting weights take it with a zero weight, so they start
    as they were); config.json is only rewritten when the first weights are published, so a run that fails early
    leaves the folder as it was.
    """
    out = Path(out)
    torch.manual_seed(opts.seed)
    cfg, record = load_config(out)
    if "autoencoder" not in record:
        raise SdSimError(f"{out}: no trained autoencoder in this checkpoint; run --stage autoencoder first")
    fine_tune = opts.init is not None and not opts.resume
    if fine_tune:  # the starting denoiser's latent statistics and recipe, with this folder's autoencoder
        cfg, init_record = load_config(opts.init)
        if "diffusion" not in init_record or not cfg.latent_mean:
            raise SdSimError(f"{opts.init}: no trained diffusion stage to fine-tune from (--init)")
        cfg = replace(cfg, count_coefficients=fit_count_model(train)).with_default_sampling()
    elif not opts.resume:
        cfg = cfg.for_new_denoiser(timestep_scale=timestep_scale,
                                   **({"unet_channels": tuple(unet_channels)} if unet_channels else {}))
    if mirror_left_hand:
        cfg = replace(cfg, mirror_left_hand=True)
    if domain_flag:
        cfg = with_domain_flag(cfg, out, opts.resume)
    ae = load_weights(AgentAutoencoder(cfg), out / WEIGHT_FILES["autoencoder"]).to(opts.device)
    latents = encode_latents(ae, train, opts.device)
    if not opts.resume and not fine_tune:
        mean = latents.mean(dim=(0, 2, 3))
        std = latents.std(dim=(0, 2, 3)).clamp(min=1e-3)
        cfg = replace(cfg, latent_mean=tuple(mean.tolist()), latent_std=tuple(std.tolist()),
                      count_coefficients=fit_count_model(train))
    mean_t = torch.tensor(cfg.latent_mean).view(1, -1, 1, 1)
    std_t = torch.tensor(cfg.latent_std).view(1, -1, 1, 1)
    latents = ((latents - mean_t) / std_t).to(opts.device)
    net = LatentDenoiser(cfg).to(opts.device)
    if fine_tune:
        load_weights(net, Path(opts.init) / WEIGHT_FILES["denoiser"],
                     partial(_widen_global_input, cfg.tokens.global_dim))
    ema = copy.deepcopy(net).eval().requires_grad_(False)
    trainer = _Trainer(cfg, out, opts, {"denoiser": net, "ema": ema}, list(net.parameters()))
    trainer.stage = "diffusion"
    if opts.resume:
        trainer.load_state()
    gen = torch.Generator(device=opts.device).manual_seed(opts.seed)
    val = val if val is not None else train

    def step() -> dict[str, float]:
        net.train()
        idx = np.sort(trainer.batch_indices(len(train)))
        rng = np.random.default_rng([opts.seed, trainer.step, 1])
        feats, mask, glob, _ = token_batch(train, idx, cfg, rng)
        x0 = latents[idx]
        sigma = sample_training_sigma(len(idx), cfg.p_mean, cfg.p_std, gen, opts.device)
        noise = torch.randn(x0.shape, generator=gen, device=opts.device)
        feats, mask = feats.to(opts.device), mask.to(opts.device)
        tokens, tmask = net.embed_tokens(feats, mask, glob.to(opts.device))
        condition = net.spatial_condition(_to(train.map[idx], opts.device), feats, mask)
        denoised = net(x0 + sigma.view(-1, 1, 1, 1) * noise, sigma, condition, tokens, tmask)
        loss = (loss_weight(sigma).view(-1, 1, 1, 1) * (denoised - x0) ** 2).mean()
        trainer.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        trainer.opt.step()
        decay = min(opts.ema_decay, (1 + trainer.step) / (10 + trainer.step))
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), net.parameters()):
                pe.lerp_(p, 1 - decay)
        return {"loss": loss.item()}

    def validate() -> dict[str, float]:
        from sd_sim_plugin.model.pipeline import ScenarioDiffusionGenerator

        generator = ScenarioDiffusionGenerator(cfg, ae, ema, device=opts.device)
        return {f"val_{k}": v for k, v in generation_scores(generator, val, np.arange(min(len(val), 64))).items()}

    def publish() -> None:
        save_weights(ema, out / WEIGHT_FILES["denoiser"])
        save_config(out, cfg, {"diffusion": _training_record(trainer, opts, train)})

    return trainer.run(step, validate, publish)


def with_domain_flag(cfg: ModelConfig, out: str | Path, resume: bool) -> ModelConfig:
    """``cfg`` with the global token's real-data feature (``--domain-flag``); a run resumed without it cannot add it."""
    if has_domain_flag(cfg.tokens):
        return cfg
    if resume:
        raise SdSimError(f"--domain-flag: {out} was trained without it, so --resume cannot add it")
    return replace(cfg, tokens=replace(cfg.tokens, global_dim=DOMAIN_GLOBAL_DIM))


def _widen_global_input(global_dim: int, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Starting weights whose global-token MLP reads fewer features than ``global_dim``, given zero weights for the
    new ones (``--domain-flag`` on a checkpoint without it): the network computes what it did before."""
    w = state.get("global_mlp.0.weight")
    if w is not None and w.shape[1] < global_dim:
        state = {**state, "global_mlp.0.weight": torch.cat([w, w.new_zeros(w.shape[0], global_dim - w.shape[1])], 1)}
    return state


@torch.inference_mode()
def generation_scores(generator, data: TrainingArrays, idx: np.ndarray) -> dict[str, float]:
    """From cached windows: with all tokens given, token recall (F1 vs the real agents); with the global token
    set to the real count and no agent tokens, mean generated vs real count and their correlation."""
    cfg = generator.cfg
    maps = _to(data.map[idx], generator.device)
    truth = decode_targets(np.asarray(data.targets[idx]), cfg)
    feats, mask, _, _ = token_batch(data, idx, cfg, None)
    ego, real = np.asarray(data.centre_is_ego)[idx], data.real_flags[idx]
    given = generator.sample_agents(maps, feats, mask, np.zeros(len(idx), np.int64), seed=0, centre_is_ego=ego,
                                    real=real)
    scores = detection_scores(given, truth, cfg.horizon.t0_index)
    counts = np.array([len(t) for t in truth])
    free = generator.sample_agents(maps, torch.zeros(len(idx), 1, cfg.tokens.agent_dim),
                                   torch.zeros(len(idx), 1, dtype=torch.bool), counts, seed=1, centre_is_ego=ego,
                                   real=real)
    n_gen = np.array([len(a) for a in free])
    corr = float(np.corrcoef(n_gen, counts)[0, 1]) if n_gen.std() > 0 and counts.std() > 0 else float("nan")
    return {"token_f1": scores["f1"], "count_real": float(counts.mean()), "count_gen": float(n_gen.mean()),
            "count_corr": corr}


def _training_record(trainer: _Trainer, opts: TrainOptions, train: TrainingArrays) -> dict:
    """What a checkpoint's config.json records about the stage that made it."""
    return {"steps": trainer.step, "batch_size": opts.batch_size, "seed": opts.seed, "train_windows": len(train),
            "data": list(train.sources) or [str(train.folder)], "train_time_s": round(trainer.elapsed_s),
            "threads": torch.get_num_threads(),
            "last_eval": trainer.history[-1] if trainer.history else {},
            **({"init": str(opts.init)} if opts.init is not None else {})}
