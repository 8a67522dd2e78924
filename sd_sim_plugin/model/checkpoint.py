"""Checkpoints: a folder with ``config.json`` (format version, model config, training record) and safetensors weights.

Files: ``autoencoder.safetensors`` (stage 1), ``denoiser.safetensors`` (stage 2, EMA weights; an ensemble's further
members ``denoiser_1.safetensors``, ...) and, for resuming, ``train_state_<stage>.safetensors`` (raw weights and
optimiser moments). Weights load only through safetensors.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.model.config import FORMAT_VERSION, MAX_DENOISERS, PER_MODEL_CHOICE, ModelConfig

CONFIG_FILE = "config.json"
WEIGHT_FILES = {"autoencoder": "autoencoder.safetensors", "denoiser": "denoiser.safetensors"}


def denoiser_file(member: int) -> str:
    """The weights file of an ensemble's ``member``-th denoiser (member 0 is the one every checkpoint has)."""
    return WEIGHT_FILES["denoiser"] if member == 0 else f"denoiser_{member}.safetensors"


def fingerprint(ckpt_dir: str | Path) -> str:
    """Short hash of a checkpoint's config and weights (what a stored result was made with)."""
    digest = hashlib.sha1()
    members = [denoiser_file(m) for m in range(1, MAX_DENOISERS) if (Path(ckpt_dir) / denoiser_file(m)).exists()]
    for name in [CONFIG_FILE, *WEIGHT_FILES.values(), *members]:
        path = Path(ckpt_dir) / name
        digest.update(path.read_bytes() if path.exists() else b"missing")
    return digest.hexdigest()[:12]


def save_config(ckpt_dir: str | Path, cfg: ModelConfig, training: dict | None = None) -> Path:
    """Write ``config.json`` (keeps earlier training records of other stages)."""
    ckpt_dir = Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    path = ckpt_dir / CONFIG_FILE
    record = {}
    if path.exists():
        record = json.loads(path.read_text()).get("training", {})
    record.update(training or {})
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"format_version": FORMAT_VERSION, "model": cfg.to_dict(), "training": record},
                              indent=2))
    tmp.replace(path)
    return path


def load_config(ckpt_dir: str | Path) -> tuple[ModelConfig, dict]:
    """Read ``config.json`` -> (model config, training record); problems raise one-line :class:`SdSimError`."""
    path = Path(ckpt_dir) / CONFIG_FILE
    if not Path(ckpt_dir).is_dir():
        raise SdSimError(f"{ckpt_dir}: no such checkpoint folder")
    if not path.exists():
        raise SdSimError(f"{path}: missing; a checkpoint folder needs config.json and safetensors weights")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SdSimError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
        version = data.get("format_version") if isinstance(data, dict) else None
        raise SdSimError(f"{path}: checkpoint format version {version}, this package reads {FORMAT_VERSION}")
    try:
        return ModelConfig.from_dict(data["model"]), data.get("training", {})
    except (KeyError, TypeError, ValueError) as exc:
        raise SdSimError(f"{path}: model config is incomplete or invalid ({type(exc).__name__}: {exc})") from None


def save_weights(module: nn.Module | dict[str, torch.Tensor], path: str | Path) -> Path:
    """Write a state dict with safetensors (atomically, so an interrupted save never leaves a broken file)."""
    path = Path(path)
    state = module.state_dict() if isinstance(module, nn.Module) else module
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, str(tmp))
    tmp.replace(path)
    return path


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file; a missing or damaged file raises :class:`SdSimError` naming it."""
    path = Path(path)
    if not path.exists():
        raise SdSimError(f"{path}: missing weights file")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise SdSimError(f"{path}: not a readable safetensors file ({exc})") from None


def load_weights(module: nn.Module, path: str | Path,
                 adapt: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None) -> nn.Module:
    """Load safetensors weights into ``module`` (through ``adapt`` when given); wrong names or shapes raise
    :class:`SdSimError` naming the file."""
    state = load_tensors(path)
    if adapt is not None:
        state = adapt(state)
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        what = (f"{len(missing)} missing" if missing else "") or (f"{len(unexpected)} unexpected" if unexpected else "")
        detail = wrong[0] if wrong else (missing or unexpected)[0]
        raise SdSimError(f"{path}: weights do not match config.json ({what or 'shape mismatch'}, e.g. {detail!r})")
    module.load_state_dict(state)
    return module


def assemble_ensemble(members: list[str | Path], out: str | Path) -> Path:
    """Write a checkpoint whose denoisers are ``members``' (one recipe trained with different seeds) into the new
    folder ``out``: the first member's config, sampling choices and autoencoder, ``denoisers`` set to their number.

    The members must share everything but their denoiser weights, training record and per-model sampling choices
    (the same autoencoder file, latent statistics, count model and architecture), else :class:`SdSimError` names the
    first difference."""
    if not 2 <= len(members) <= MAX_DENOISERS:
        raise SdSimError(f"an ensemble needs 2 to {MAX_DENOISERS} checkpoints, got {len(members)}")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SdSimError(f"{out}: exists and is not an empty folder; the ensemble goes into a new one")
    loaded = [load_config(m) for m in members]
    first, first_record = loaded[0]
    shared = {k: v for k, v in first.to_dict().items() if k not in PER_MODEL_CHOICE}
    autoencoder = load_tensors(Path(members[0]) / WEIGHT_FILES["autoencoder"])
    for member, (cfg, record) in zip(members, loaded, strict=True):
        if "diffusion" not in record or cfg.denoisers != 1:
            raise SdSimError(f"{member}: not a trained single-denoiser checkpoint (config.json's training record)")
    for member, (cfg, _) in zip(members[1:], loaded[1:], strict=True):
        other = {k: v for k, v in cfg.to_dict().items() if k not in PER_MODEL_CHOICE}
        differs = [k for k in shared if shared[k] != other.get(k)]
        if differs:
            raise SdSimError(f"{member}: config.json's {differs[0]!r} differs from {members[0]}'s; ensemble members "
                             "are one recipe trained with different seeds")
        theirs = load_tensors(Path(member) / WEIGHT_FILES["autoencoder"])
        if theirs.keys() != autoencoder.keys() or any(not torch.equal(theirs[k], autoencoder[k]) for k in theirs):
            raise SdSimError(f"{member}: its autoencoder differs from {members[0]}'s; ensemble members share one")
    from sd_sim_plugin.model.denoiser import LatentDenoiser  # heavy (diffusers); only this function needs it

    # every member's weights read and checked against the config before anything is written
    denoisers = [load_weights(LatentDenoiser(first), Path(member) / WEIGHT_FILES["denoiser"]).state_dict()
                 for member in members]
    # written beside ``out`` and renamed at the end, so an interrupted run leaves no half-written checkpoint
    partial = out.with_name(f".{out.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    save_weights(autoencoder, partial / WEIGHT_FILES["autoencoder"])
    for m, state in enumerate(denoisers):
        save_weights(state, partial / denoiser_file(m))
    record = {**first_record, "ensemble": [{"from": str(member), "diffusion": rec.get("diffusion")}
                                           for member, (_, rec) in zip(members, loaded, strict=True)]}
    save_config(partial, replace(first, denoisers=len(members)), record)
    if out.exists():
        out.rmdir()  # empty, checked above
    partial.rename(out)
    return out / CONFIG_FILE
