"""Model weights in and out.

Out: a run's trained model, final and best, as safetensors files that timm loads after `import kd`:
`timm.create_model(arch, num_classes=..., in_chans=..., checkpoint_path="final.safetensors")` (add `width=`
for a CIFAR-zoo model of another width). The file's metadata names the model (arch, width, classes,
channels), the run and the epoch; `config.json` beside it is the run's whole config (`--config` reruns it).

In: a checkpoint of this repo (a teacher's `.pt`, a student's `.safetensors`), a bare state_dict, or one of
the checkpoints CIFAR KD researchers already own: mdistiller's and RepDistiller's
(`cifar_teachers/<name>_vanilla/ckpt_epoch_240.pth`, a dict whose "model" is a state_dict in their key
layout), mapped key by key onto this repo's zoo, which follows their architecture; what does not map is
refused with its key names.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from kd.errors import KDError

META = ("arch", "width", "num_classes", "in_chans", "run_id", "epoch", "test_top1")


def save_model(path: Path, model: torch.nn.Module | dict, **meta):
    """A state_dict (or a model's) as a safetensors file with `meta` (see META) as its metadata, written
    atomically (a file lands whole or not at all)."""
    state = model if isinstance(model, dict) else model.state_dict()
    state = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_file(state, str(tmp), metadata={k: json.dumps(v) for k, v in meta.items()})
    os.replace(tmp, path)


def save_run(folder: Path, config: dict, final: torch.nn.Module, best: dict | None, meta: dict, best_meta: dict):
    """A run's model, final and best (its weights at the evaluation of highest test top-1), beside its config."""
    save_model(folder / "final.safetensors", final, **meta)
    if best is not None:
        save_model(folder / "best.safetensors", best, **{**meta, **best_meta})
    tmp = folder / f".config.json.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, folder / "config.json")


def read_meta(path: Path) -> dict:
    """The metadata of a safetensors file this repo saved ({} for one saved elsewhere)."""
    from safetensors import safe_open
    with safe_open(str(path), "pt") as f:
        return {k: json.loads(v) for k, v in (f.metadata() or {}).items() if k in META}


def read_weights(path: Path) -> tuple[dict, dict]:
    """(state_dict, what the file says of its model) from any checkpoint this repo takes, a DataParallel
    'module.' prefix dropped; errors in one sentence. Keys stay as saved: to_zoo maps another repo's CIFAR
    layout onto the zoo."""
    path = Path(path)
    if not path.is_file():
        raise KDError(f"Checkpoint {path} does not exist.")
    try:
        if path.suffix == ".safetensors":
            return load_file(str(path)), read_meta(path)
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch's own message is a page on weights_only; safetensors' a bare SafetensorError
        raise KDError(f"Checkpoint {path} could not be read as PyTorch or safetensors weights "
                      f"({type(exc).__name__}); give a file written by this repo, a state_dict saved with torch.save, "
                      f"or an mdistiller / RepDistiller checkpoint.") from None
    meta = {}
    if isinstance(ckpt, dict) and isinstance(ckpt.get("state_dict"), dict):  # this repo's teachers (timm's too)
        meta = {k: v for k, v in ckpt.items() if k != "state_dict"}
        ckpt = ckpt["state_dict"]
    elif isinstance(ckpt, dict) and isinstance(ckpt.get("model"), dict):  # mdistiller / RepDistiller
        ckpt = ckpt["model"]
    if not isinstance(ckpt, dict) or not ckpt or not all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        raise KDError(f"Checkpoint {path} holds no state_dict of tensors (a checkpoint of this repo, a bare "
                      f"state_dict, or a dict whose 'model' or 'state_dict' is one).")
    return {k.removeprefix("module."): v for k, v in ckpt.items()}, meta


# ----------------------------------------------------------------------------------------- other layouts
# mdistiller / RepDistiller CIFAR ResNets: conv1, bn1, layer1..3 of BasicBlocks (conv1, bn1, conv2, bn2,
# downsample.0 = 1x1 conv, downsample.1 = BN), fc. Ours: stem.0, stem.1, one flat `stages` of timm
# BasicBlocks with the same inner names, head.fc.
# Their WRNs: conv1, block1..3.layer.j (bn1, conv1, bn2, conv2, convShortcut: pre-activation), bn1, fc.
# Ours: stem, stages.k (timm PreActBasic: norm1, conv1, norm2, conv2, downsample.conv), norm, head.fc.
_WRN_INNER = {"bn1": "norm1", "conv1": "conv1", "bn2": "norm2", "conv2": "conv2", "convShortcut": "downsample.conv"}


def layout(state: dict) -> str:
    keys = set(state)
    if any(k.startswith("block1.layer.") for k in keys):
        return "wrn"
    if any(k.startswith("layer1.") for k in keys) and "conv1.weight" in keys:
        return "resnet"
    return "zoo"


def to_zoo(state: dict) -> dict:
    """A CIFAR state_dict in mdistiller / RepDistiller's layout renamed to this repo's zoo (for a model of the
    zoo only: timm's ImageNet ResNets share their top-level names); one in the zoo's layout comes back as it
    is. Keys that fit no rule of the detected layout are refused by name."""
    kind = layout(state)
    if kind == "zoo":
        return state
    stage = "layer" if kind == "resnet" else "block"
    pattern = re.compile(rf"{stage}(\d)\.(?:layer\.)?(\d+)\.(.+)")
    per_stage = max(int(m[2]) for k in state if (m := pattern.fullmatch(k))) + 1  # blocks in a stage
    out, unmapped = {}, []
    for key, value in state.items():
        head, _, leaf = key.rpartition(".")
        if m := pattern.fullmatch(key):
            index = (int(m[1]) - 1) * per_stage + int(m[2])
            inner, _, leaf = m[3].rpartition(".")
            inner = inner if kind == "resnet" else _WRN_INNER.get(inner)
            if inner is None or (kind == "resnet" and inner not in ("conv1", "bn1", "conv2", "bn2", "downsample.0",
                                                                   "downsample.1")):
                unmapped.append(key)
                continue
            out[f"stages.{index}.{inner}.{leaf}"] = value
        elif head in ("conv1", "bn1", "fc"):
            top = {"conv1": "stem.0" if kind == "resnet" else "stem",
                   "bn1": "stem.1" if kind == "resnet" else "norm", "fc": "head.fc"}[head]
            out[f"{top}.{leaf}"] = value
        else:
            unmapped.append(key)
    if unmapped:
        raise KDError(f"These keys of an mdistiller / RepDistiller {kind} checkpoint map onto no layer of this repo's "
                      f"zoo: {', '.join(unmapped[:8])}{' ...' if len(unmapped) > 8 else ''}. The zoo has their "
                      f"CIFAR ResNets (resnet8..110, resnet8x4, resnet32x4) and WRNs (wrn_16_k, wrn_40_k).")
    return out


def describe(state: dict) -> dict:
    """What a zoo state_dict's shapes say of its model: classes and input channels."""
    fc = state.get("head.fc.weight")
    stem = state.get("stem.0.weight", state.get("stem.weight"))
    return {k: v for k, v in (("num_classes", None if fc is None else fc.shape[0]),
                              ("in_chans", None if stem is None else stem.shape[1])) if v is not None}
