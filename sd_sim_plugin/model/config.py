"""The model's configuration: raster, horizon, cell grid, architecture and token layout, stored in checkpoints."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from sd_sim_plugin.model.edm import SOLVERS
from sd_sim_plugin.model.tokens import TokenLayout, has_domain_flag
from sd_sim_plugin.raster.bev import AGENT_CHANNELS, MAP_CHANNELS
from sd_sim_plugin.scene.types import Horizon

FORMAT_VERSION = 1
GUIDANCE_CONTRASTS = ("count", "domain")
DRAW_SELECTIONS = ("most_typical", "herding", "herding_groups")
STAGE2_RECIPE = ("timestep_scale", "position_features", "token_raster", "p_mean", "p_std", "tokens", "sampler",
                 "sampler_steps", "guidance_scale", "guidance_interval", "guidance_contrast", "denoisers")
# Chosen together by measuring each trained model (model/sampler_sweep.py): a fine-tune starts from the defaults.
SAMPLING_CHOICE = ("sampler", "sampler_steps", "guidance_scale", "guidance_interval", "guidance_contrast",
                   "offroad_vehicle_scale", "misaligned_vehicle_scale", "ego_flag", "real_flag", "lane_snap_deg",
                   "refill_rounds", "draws_per_scene", "draw_selection")
# Also chosen per trained model, by its own rule rather than the sweep's MMD sum (docs/model.md): a fine-tune starts
# without it, and a sweep leaves it as the target checkpoint has it.
PER_MODEL_CHOICE = (*SAMPLING_CHOICE, "trajectory_overlap")
MAX_REFILL_ROUNDS = 3  # each round samples the short scenes once more
MAX_DRAWS_PER_SCENE = 8  # each draw is one more scene in the sampler's batch
MAX_DENOISERS = 8  # an ensemble's members split the sampler's batch among them


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the networks and read their outputs (JSON round-trips via to/from_dict)."""

    size_px: int = 64
    resolution_m: float = 1.25
    map_channels: int = len(MAP_CHANNELS)
    agent_channels: int = len(AGENT_CHANNELS)  # for the default horizon
    horizon: Horizon = field(default_factory=Horizon)
    grid: int = 32  # output cells per side (one box proposal each)
    latent_channels: int = 4
    latent_size: int = 16
    ae_width: int = 32
    map_embed_channels: int = 8  # denoiser map encoder output, concatenated with the noisy latent
    unet_channels: tuple[int, int] = (32, 64)
    token_dim: int = 64
    attention_head_dim: int = 8
    existence_threshold: float = 0.3  # held-out PG: F1 0.955 at 0.3, 0.953 at 0.5, 0.932 at 0.7
    peak_window: int = 1  # 3 = keep only 3 x 3 local maxima; 1 = every cell (overlap removal alone measured better)
    lane_snap_deg: float = 20.0  # vehicle / cyclist on a lane this close to its heading: turned onto it (0 = off)
    overlap_scale: float = 1.15  # boxes scaled by this for overlap removal (>1 also removes near-duplicates)
    # Overlap removal also along the trajectories (every pose, boxes at their own size): a proposal whose trajectory
    # runs through a more probable one's is dropped like one overlapping it at t = 0, so decoded futures do not drive
    # through each other (each cell decodes its own future; docs/model.md). False: t = 0 only.
    trajectory_overlap: bool = False
    # Existence scores of vehicle proposals in cells with no drivable pixel are multiplied by this when boxes are
    # ranked (1 = off): a map prior for maps unlike the training maps; chosen on validation scenes (docs/model.md).
    offroad_vehicle_scale: float = 1.0
    # Likewise for vehicle proposals on a lane but more than lane_snap_deg off the heading of every lane holding them
    # (1 = off): logged traffic almost never stands across a lane (real validation scenes: 0.4% of moving vehicles on
    # a lane, against 23% of one model's), so such a proposal ranks behind the aligned ones (docs/model.md).
    misaligned_vehicle_scale: float = 1.0
    # The global token's centred-on-ego flag when generating. False asks for the neighbourhood of a training window
    # centred on another vehicle in traffic, which the scarce real ego windows may describe less well; chosen on
    # validation scenes like the sampler (docs/model.md). Training passes each window's own value.
    ego_flag: bool = True
    # The global token's real-data flag when generating, for a model trained with one (``sd-sim train
    # --domain-flag``: PG windows 0, real windows 1): which domain's traffic to draw; chosen like the ego flag.
    real_flag: bool = False
    # Scenes whose lanes say traffic keeps left (scene/handedness.py) are mirrored into right-hand traffic before
    # rasterising, in training and generation, and generated agents are mirrored back: the scarce left-hand real
    # scenes (Singapore) then teach the same right-hand model as everything else (docs/model.md). Set by
    # ``sd-sim train --mirror-left-hand`` (it changes the training data); false = checkpoints trained without it.
    mirror_left_hand: bool = False
    # Scenes left short of the count asked for (overlapping proposals) are sampled again up to this many times, with
    # the agents kept so far as agent tokens and the shortfall as the count; the new agents that fit are added
    # (docs/model.md, *A refill round*). 0 = off.
    refill_rounds: int = 0
    # Each scene is sampled this many times in one batch and the most typical draw is kept: the one whose agents have
    # the least summed MMD to the other draws' (minimum-Bayes-risk selection; docs/model.md, *The most typical of
    # four draws*). 1 = off.
    draws_per_scene: int = 1
    # How a scene is made from its draws: "most_typical" keeps one whole draw (above); "herding" composes it from all
    # draws' agents by kernel herding, so it covers their pooled layout evenly, and "herding_groups" likewise a whole
    # group of nearby vehicles at a time (model/herding.py; docs/model.md, *Draws composed by kernel herding*).
    draw_selection: str = "most_typical"
    # Stage-2 denoisers in the checkpoint: an ensemble of one recipe's training seeds, sharing the autoencoder, latent
    # statistics and count model (``sd-sim ensemble``); row r of a sampling batch uses denoiser r mod this, so a
    # scene's draws come from all of them (docs/model.md, *Three training seeds as one ensemble*). 1 = one denoiser.
    denoisers: int = 1
    sampler: str = "dpmpp2m"  # euler | heun | dpmpp2m | dpmpp2m_sde (model/edm.py); chosen by measurement
    sampler_steps: int = 6
    # Classifier-free guidance on the global scene token (set against "unset", the agent tokens in both halves),
    # applied only at sampler noise levels in (low, high] (docs/model.md). 1.0 = off, what new checkpoints start
    # with; the shipped checkpoint sets its own value, chosen on validation maps.
    guidance_scale: float = 1.0
    guidance_interval: tuple[float, float] = (1.0, 10.0)
    # What guidance sets the conditional half against: "count", the global token unset (the model picks the count);
    # or "domain", the real flag off, i.e. MetaDrive's PG traffic, so a scale above 1 pushes a real-flagged scene
    # further from PG traffic (domain guidance; needs real_flag).
    guidance_contrast: str = "count"
    # Training noise levels: log(sigma) ~ N(p_mean, p_std^2). EDM's image default (-1.2, 1.2) puts 1% of samples above
    # sigma = 5, yet which agents exist is decided between sigma ~2 and 20 here (agent cells have a standardised
    # variance of ~6 in a sparse latent), so a denoiser trained that way ignored its tokens at the start of sampling.
    p_mean: float = 0.5
    p_std: float = 1.5
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    rho: float = 7.0
    # Multiplies the EDM c_noise = ln(sigma)/4 (about -1.5..1) before the U-Net, whose sinusoidal time embedding
    # expects diffusers' 0..1000 timestep scale; 1.0 = checkpoints trained before this field existed.
    timestep_scale: float = 1.0
    # Ego-frame coordinate channels (the agent tokens' Fourier position features, per latent cell) concatenated with
    # the U-Net input. Convolutions are translation-equivariant, so without them a cross-attention query does not know
    # where it is and cannot pick out the token at its own position. False = checkpoints trained before the field.
    position_features: bool = True
    # Agent tokens also drawn into a raster on the output grid (presence, offset in the cell, their other features),
    # space-to-depth to the latent size and concatenated with the U-Net input: a local signal a small conv U-Net uses
    # from the first steps, beside cross-attention (docs/model.md). False = checkpoints trained before the field.
    token_raster: bool = True
    tokens: TokenLayout = field(default_factory=TokenLayout)
    # Count model for scenes whose global token is left unset (model/count.py); () = sample with the unset bucket.
    count_coefficients: tuple[float, ...] = ()
    latent_mean: tuple[float, ...] = ()
    latent_std: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.sampler not in SOLVERS:
            raise ValueError(f"sampler {self.sampler!r} is not one of {', '.join(SOLVERS)}")
        if self.sampler_steps < 1 or self.p_std <= 0:
            raise ValueError(f"sampler_steps ({self.sampler_steps}) and p_std ({self.p_std}) must be positive")
        if len(self.unet_channels) != 2 or not all(
                isinstance(c, int) and not isinstance(c, bool) and c >= 8 and c % 8 == 0 for c in self.unet_channels):
            # diffusers' U-Net normalises in 8 groups; the denoiser has two resolution levels
            raise ValueError(f"unet_channels {list(self.unet_channels)} must be two positive multiples of 8")
        for name in ("offroad_vehicle_scale", "misaligned_vehicle_scale", "lane_snap_deg", "overlap_scale",
                     "guidance_scale", "existence_threshold"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{name} ({value!r}) must be a number")  # checked before the ranges compare it
        if not 0 <= self.offroad_vehicle_scale <= 1:
            raise ValueError(f"offroad_vehicle_scale ({self.offroad_vehicle_scale}) must be in [0, 1] (1 = no prior)")
        if not 0 <= self.misaligned_vehicle_scale <= 1:
            raise ValueError(f"misaligned_vehicle_scale ({self.misaligned_vehicle_scale}) must be in [0, 1] "
                             "(1 = no prior)")
        if not 0 <= self.lane_snap_deg <= 180:
            raise ValueError(f"lane_snap_deg ({self.lane_snap_deg}) must be in [0, 180] degrees (0 = no alignment)")
        if self.misaligned_vehicle_scale != 1 and self.lane_snap_deg <= 0:
            raise ValueError("misaligned_vehicle_scale needs lane_snap_deg > 0: it is the heading tolerance")
        if isinstance(self.refill_rounds, bool) or not isinstance(self.refill_rounds, int) \
                or not 0 <= self.refill_rounds <= MAX_REFILL_ROUNDS:
            raise ValueError(f"refill_rounds ({self.refill_rounds!r}) must be a whole number in [0, "
                             f"{MAX_REFILL_ROUNDS}] (0 = off)")
        if isinstance(self.draws_per_scene, bool) or not isinstance(self.draws_per_scene, int) \
                or not 1 <= self.draws_per_scene <= MAX_DRAWS_PER_SCENE:
            raise ValueError(f"draws_per_scene ({self.draws_per_scene!r}) must be a whole number in [1, "
                             f"{MAX_DRAWS_PER_SCENE}] (1 = off)")
        if self.draw_selection not in DRAW_SELECTIONS:
            raise ValueError(f"draw_selection {self.draw_selection!r} is not one of {', '.join(DRAW_SELECTIONS)}")
        if isinstance(self.denoisers, bool) or not isinstance(self.denoisers, int) \
                or not 1 <= self.denoisers <= MAX_DENOISERS:
            raise ValueError(f"denoisers ({self.denoisers!r}) must be a whole number in [1, {MAX_DENOISERS}]")
        for name in ("ego_flag", "real_flag", "mirror_left_hand", "trajectory_overlap"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} ({getattr(self, name)!r}) must be true or false")
        if self.real_flag and not has_domain_flag(self.tokens):
            raise ValueError("real_flag needs a global token with the real-data feature (sd-sim train --domain-flag)")
        if len(self.guidance_interval) != 2:
            raise ValueError(f"guidance_interval must be [low, high], got {list(self.guidance_interval)}")
        low, high = self.guidance_interval
        if self.guidance_scale < 0 or not 0 <= low < high:
            raise ValueError(f"guidance_scale ({self.guidance_scale}) must be >= 0 and guidance_interval "
                             f"({low}, {high}] a range of noise levels with 0 <= low < high")
        if self.guidance_contrast not in GUIDANCE_CONTRASTS:
            raise ValueError(f"guidance_contrast {self.guidance_contrast!r} is not one of "
                             f"{', '.join(GUIDANCE_CONTRASTS)}")
        if self.guidance_contrast == "domain" and not self.real_flag:
            raise ValueError("guidance_contrast domain sets the real flag against PG traffic: it needs real_flag")
        if self.count_coefficients and len(self.count_coefficients) != self.map_channels + 1:
            raise ValueError(f"count_coefficients has {len(self.count_coefficients)} values, the count model needs "
                             f"map_channels + 1 = {self.map_channels + 1}")

    def for_new_denoiser(self, **overrides) -> ModelConfig:
        """This config with the current stage-2 recipe (noise levels, extra inputs, token layout, sampler): what a
        fresh stage 2 trains with, whatever recipe the stage-1 checkpoint was written under."""
        fresh = ModelConfig()
        recipe = {name: getattr(fresh, name) for name in STAGE2_RECIPE}
        return replace(self, **{**recipe, **overrides})

    def with_default_sampling(self) -> ModelConfig:
        """This config with the default sampler, step count, guidance, priors, flags and trajectory overlap rule
        (:data:`PER_MODEL_CHOICE`), which are chosen per trained model, and one denoiser (a fine-tune of an ensemble
        starts from its first): what a fine-tuned stage 2 starts with."""
        fresh = ModelConfig()
        return replace(self, denoisers=1, **{name: getattr(fresh, name) for name in PER_MODEL_CHOICE})

    @property
    def cell_m(self) -> float:
        """Side of one output cell in metres."""
        return self.size_px * self.resolution_m / self.grid

    @property
    def num_deltas(self) -> int:
        """Trajectory poses besides t = 0 (each predicted as a chained delta)."""
        return self.horizon.num_steps - 1

    def to_dict(self) -> dict:
        """JSON-friendly form."""
        d = asdict(self)
        d["horizon"] = self.horizon.to_dict()
        d["tokens"] = self.tokens.to_dict()
        d["unet_channels"] = list(self.unet_channels)
        d["guidance_interval"] = list(self.guidance_interval)
        d["latent_mean"] = list(self.latent_mean)
        d["latent_std"] = list(self.latent_std)
        d["count_coefficients"] = list(self.count_coefficients)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d["horizon"] = Horizon(**d["horizon"])
        d["tokens"] = TokenLayout(**d["tokens"])
        d["unet_channels"] = tuple(d["unet_channels"])
        if "guidance_interval" in d:
            d["guidance_interval"] = tuple(d["guidance_interval"])
        d["latent_mean"] = tuple(d.get("latent_mean", ()))
        d["latent_std"] = tuple(d.get("latent_std", ()))
        d["count_coefficients"] = tuple(d.get("count_coefficients", ()))
        d.setdefault("position_features", False)
        d.setdefault("token_raster", False)
        d.setdefault("sampler", "euler")
        d.setdefault("p_mean", -1.2)
        d.setdefault("p_std", 1.2)
        return cls(**d)
