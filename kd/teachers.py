"""Teachers: train-or-load through a cache keyed by the full training config, external checkpoints,
ensembles and timm's pretrained weights, and publishing (the frozen teacher the loop distils from, with its
logit cache, is kd/logit_cache.py).

A teacher is identified by a `spec` dict (model, width, dataset and augmentation, training pool, recipe,
seed). Its checkpoint lives in `<cache>/teachers/<model>-<hash of spec>/final.pt`, written atomically under
a file lock so that parallel runs never train the same teacher twice nor read half a file. Snapshots of
earlier epochs (`epoch<E>.pt`) serve the early-stopped-teacher experiments.

Teachers published with the results (`results/teachers/<model>-<hash>/`, copied there by a finding's
`--publish-teachers`) are taken before training: a fresh clone distils from the weights the committed rows
were distilled from, where training its own would give other weights on another CPU (oneDNN's kernels
differ) and cost hours on a 2-core machine.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from pathlib import Path

import timm
import torch
from filelock import FileLock

from kd import distributed
from kd.checkpoints import describe, read_weights, to_zoo
from kd.device import place
from kd.errors import KDError
from kd.logit_cache import Teacher
from kd.metrics import topk_accuracy
from kd.models import CIFAR_MODELS, create_model
from kd.objectives import CrossEntropy
from kd.recipe import Recipe
from kd.records import (REPO, DamagedFile, append_row, atomic_save, cache_dir, check_saved, command_line, config_hash,
                        copy_saved, device_name, git_commit, load_saved, read_rows, sum_path, weights_sha256)
from kd.samplers import Shuffle
from kd.train import fit, predict


def spec_hash(spec: dict) -> str:
    return config_hash(spec, 12)


def teacher_spec(model: str, data, pool_fraction: float, recipe: Recipe, seed: int, width: float = 1.0,
                 label_smoothing: float = 0.0) -> dict:
    """Everything that determines a trained teacher; two equal specs give the same weights."""
    return {"model": model, "width": width, "dataset": data.identity(), "pool_fraction": pool_fraction,
            "pool_seed": 0, "recipe": recipe.as_dict(), "seed": seed, "label_smoothing": label_smoothing}


def _checkpoint(model, spec: dict, epoch: int, test_top1: float, device) -> dict:
    # where it was trained: weights are not bit-identical across CPUs, and published teachers travel
    trained_on = {"device": device_name(torch.device(device)), "commit": git_commit()}
    return {"arch": spec["model"], "width": spec["width"], "num_classes": model.num_classes,
            "in_chans": model.in_chans, "state_dict": model.state_dict(), "spec": spec, "epoch": epoch,
            "test_top1": test_top1, "trained_on": trained_on}


def checkpoint_name(spec: dict, epoch: int | None) -> str:
    """The file of `spec`'s teacher at `epoch` in its folder: final.pt when fully trained (None or the last
    epoch), epoch<E>.pt for a snapshot."""
    return "final.pt" if epoch in (None, spec["recipe"]["epochs"]) else f"epoch{epoch}.pt"


def teacher_folder(spec: dict) -> Path:
    return cache_dir() / "teachers" / f"{spec['model']}-{spec_hash(spec)}"


def published_dir() -> Path:
    """Where published teachers are kept: $KD_TEACHERS, default results/teachers of this repo."""
    return Path(os.environ.get("KD_TEACHERS", REPO / "results" / "teachers"))


def published_folder(spec: dict) -> Path:
    """The published copy of `spec`'s teacher, named as its cache folder."""
    return published_dir() / teacher_folder(spec).name


def adopt_published(spec: dict, log=print) -> bool:
    """Fill an empty cache folder from the published copy of `spec`'s teacher, if there is one (call under
    the folder's lock). A folder with a teacher of its own, or one being trained, is left as it is."""
    src, folder = published_folder(spec), teacher_folder(spec)
    if not (src / "final.pt").is_file() or (folder / "final.pt").exists() or (folder / "train_state.pt").exists():
        return False
    try:
        for path in sorted(src.glob("*.pt")):
            copy_saved(path, folder / path.name)
    except DamagedFile as exc:
        raise KDError(f"The published teacher {src} is damaged ({exc}); restore it with `git checkout -- {src}`, "
                      f"or delete the folder to train the teacher here.") from None
    log(f"teacher {spec['model']} ({spec_hash(spec)}): the published weights of {src}")
    return True


def recorded_weights(results: Path, key: str) -> dict:
    """The weights (SHA-256) that the rows under `results` (results/<finding>/<profile>/runs.csv) record for
    the teacher `key` (its cache folder's name), by epoch (None: fully trained)."""
    found = {}
    for runs in sorted(Path(results).glob("*/*/runs.csv")):
        rows = read_rows(runs)
        if not {"teacher_key", "teacher_sha256"} <= set(rows):
            continue
        for _, row in rows[rows.teacher_key == key].dropna(subset=["teacher_sha256"]).iterrows():
            epoch = row.get("teacher.epoch")
            found.setdefault(None if epoch != epoch or epoch is None else int(epoch), set()).add(row.teacher_sha256)
    return found


def publish_teacher(spec: dict, epochs=(), results: Path | None = None) -> Path:
    """Copy the fully trained teacher of `spec` (with its training history) and its snapshots at `epochs`
    from the cache into published_dir(), each with the SHA-256 of its weights in teachers.csv. Refused when
    rows under `results` were distilled from other weights of this teacher: its published copy must stay
    the one they name. Returns the published folder."""
    folder, dest = teacher_folder(spec), published_folder(spec)
    last = spec["recipe"]["epochs"]
    snapshots = sorted(set(epochs) - {last})
    names = ["final.pt", "history.pt"] + [f"epoch{e}.pt" for e in snapshots]
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise KDError(f"Teacher {spec['model']} ({spec_hash(spec)}) has no {', '.join(missing)} in {folder}: run "
                      f"the finding first, so that it trains its teachers, then publish them.")
    files = {None: "final.pt", **{e: f"epoch{e}.pt" for e in snapshots}}
    hashes = {e: weights_sha256(load_saved(folder / name)["state_dict"]) for e, name in files.items()}
    for epoch, named in recorded_weights(results, dest.name).items() if results is not None else ():
        if epoch in hashes and named != {hashes[epoch]}:
            raise KDError(f"Not publishing teacher {dest.name}: rows under {results} were distilled from its weights "
                          f"{', '.join(h[:16] + '...' for h in sorted(named))} ({files[epoch]}), and the cache holds "
                          f"{hashes[epoch][:16]}... (another training of the same recipe: training is not "
                          f"bit-identical across CPU kinds). Its published copy stays the one those rows name; "
                          f"nothing was changed.")
    # snapshots published before are kept with the same weights (another finding may distil from them), and
    # removed with other ones: files of two trainings are never mixed
    same = (dest / "final.pt").is_file() and weights_sha256(load_saved(dest / "final.pt")["state_dict"]) == hashes[None]
    for stale in dest.glob("*.pt*") if dest.is_dir() else ():
        if stale.name.removesuffix(".sha256") not in names and not (same and stale.name.startswith("epoch")):
            stale.unlink()
    for name in names:
        copy_saved(folder / name, dest / name)
    snapshots = sorted(int(f.stem.removeprefix("epoch")) for f in dest.glob("epoch*.pt"))
    hashes.update({e: weights_sha256(load_saved(dest / f"epoch{e}.pt")["state_dict"]) for e in snapshots
                   if e not in hashes})
    names = ["final.pt", "history.pt"] + [f"epoch{e}.pt" for e in snapshots]
    ckpt = load_saved(dest / "final.pt")
    trained_on = ckpt.get("trained_on", {})  # absent: trained before checkpoints recorded it
    append_row(published_dir() / "teachers.csv", {
        "run_id": dest.name, "status": "done", "model": spec["model"], "width": spec["width"],
        "seed": spec["seed"], "dataset": spec["dataset"], "pool_fraction": spec["pool_fraction"],
        "epochs": last, "snapshots": " ".join(map(str, snapshots)), "test_top1": ckpt["test_top1"],
        "weights_sha256": hashes[None], "snapshot_sha256": " ".join(hashes[e] for e in snapshots),
        "trained_on": trained_on.get("device", "not recorded"), "trained_at_commit": trained_on.get("commit", ""),
        "megabytes": round(sum((dest / n).stat().st_size for n in names) / 2**20, 2),
        "git_commit": git_commit(), "command": command_line()})
    return dest


def default_snapshots(epochs: int) -> set[int]:
    """Epochs whose checkpoints a teacher keeps for early-stopped-teacher experiments: every epoch of a
    short schedule, every tenth and every quarter of a long one (so that a finding that distils from a
    teacher's quarters finds them in a teacher another finding trained first)."""
    if epochs <= 30:
        return set(range(1, epochs + 1))
    return set(range(epochs // 10, epochs + 1, epochs // 10)) | {epochs * q // 4 for q in (1, 2, 3)}


def _train(spec: dict, data, device, snapshots=(), log=print) -> dict:
    """Train the teacher of `spec` from labels and write final.pt, history.pt and the snapshot epochs."""
    from kd.data import training_pool

    folder = teacher_folder(spec)
    log(f"training teacher {spec['model']} ({spec_hash(spec)}) for {spec['recipe']['epochs']} epochs; "
        f"cache: {folder}")
    # A new training replaces the folder's weights: whatever an earlier one left (its snapshots, the logit
    # caches of any of its checkpoints) would otherwise outlive them; weights need not be bit-identical
    # between machines, so nothing of the old run may be mixed with the new one. A training that was
    # killed goes on from its saved state instead, keeping the snapshots it had written.
    state = folder / "train_state.pt"
    if not state.exists() and distributed.is_writer():
        for old in folder.glob("*.logits"):
            shutil.rmtree(old)
        for old in folder.glob("epoch*.pt*"):
            old.unlink()
    torch.manual_seed(spec["seed"])
    model = create_model(spec["model"], data.num_classes, data.in_chans, spec["width"])
    pool = training_pool(data.targets("train"), spec["pool_fraction"], spec["pool_seed"])
    recipe = Recipe.from_dict(spec["recipe"])
    snapshots = set(snapshots) | default_snapshots(recipe.epochs)

    def save_snapshot(epoch, student):
        if epoch in snapshots and epoch != recipe.epochs:
            top1 = student.history[-1].get("test_top1")
            atomic_save(_checkpoint(student.model, spec, epoch, top1, device), folder / f"epoch{epoch}.pt")

    result, = fit([model], [CrossEntropy(spec["label_smoothing"])], data,
                  Shuffle(pool, recipe.batch_size, spec["seed"]), recipe, spec["seed"], device=device,
                  name=f"teacher {spec['model']}", on_epoch=save_snapshot, log=log, state=state, keep_best=True)
    atomic_save(_checkpoint(model, spec, recipe.epochs, result["final"]["test_top1"], device), folder / "final.pt")
    atomic_save(result["history"], folder / "history.pt")
    for path in (state, sum_path(state)):
        path.unlink(missing_ok=True)
    return result


def train_teacher(spec: dict, data, device, snapshots=(), log=print):
    """Train (or re-train) the teacher of `spec` and cache it. Returns (model, info, fit result)."""
    with FileLock(str(teacher_folder(spec)) + ".lock"):
        result = _train(spec, data, device, snapshots, log)
    return (*load_checkpoint(teacher_folder(spec) / "final.pt", data, device, spec["model"]), result)


def teacher_model(spec: dict, data, device, snapshots=(), epoch: int | None = None, log=print):
    """The teacher of `spec` at `epoch` (default: fully trained), trained now unless cached.
    Returns (model in eval mode, checkpoint info without the weights)."""
    last = spec["recipe"]["epochs"]
    epoch = epoch or last
    for e in {epoch, *snapshots}:
        if not 1 <= e <= last:
            raise KDError(f"A teacher snapshot must be at an epoch in [1, {last}], got {e}.")
    files = {e: teacher_folder(spec) / checkpoint_name(spec, e) for e in {epoch, *snapshots}}
    # one process trains a teacher at a time; under torchrun rank 0 holds the lock, checks the files and
    # decides, and the ranks train it together
    writer = distributed.is_writer()
    with FileLock(str(teacher_folder(spec)) + ".lock") if writer else contextlib.nullcontext():
        if writer:
            adopt_published(spec, log)
        for path in files.values():
            if writer and path.exists():
                try:
                    check_saved(path)
                except DamagedFile as exc:  # never use it: train the teacher again, which rewrites it
                    log(f"{exc} Training the teacher again.")
                    path.unlink()
        # a missing snapshot: the whole run again
        if distributed.agree(writer and not all(path.exists() for path in files.values())):
            _train(spec, data, device, set(files), log)
    distributed.barrier()  # rank 0 has written the checkpoints the other ranks read now
    model, info = load_checkpoint(files[epoch], data, device, spec["model"])
    return model, {**info, "key": teacher_folder(spec).name}


def external_logits_dir(checkpoint: Path) -> Path:
    """Where the logit cache of a checkpoint from elsewhere lives: keyed by the file's content."""
    digest = hashlib.sha1(Path(checkpoint).read_bytes()).hexdigest()[:16]
    return cache_dir() / "external" / digest


def load_teacher(spec: dict, data, device, epoch: int | None = None, log=print, cache: bool | None = None,
                 snapshots=()):
    """The teacher of `spec` as the loop uses it: teacher_model wrapped in a Teacher whose logit cache lives
    next to the checkpoint (`snapshots`: epochs whose checkpoints must exist too, trained in one go)."""
    model, info = teacher_model(spec, data, device, snapshots, epoch=epoch, log=log)
    return Teacher([model], data, Path(info["path"]).with_suffix(".logits"), cache), info


def load_ensemble(specs: list[dict], data, device, log=print, cache: bool | None = None):
    """The ensemble of the teachers of `specs` (each trained once and cached) as the loop uses it: it predicts
    the mean of its members' probabilities (Stanton et al. 2021, as the official code does), and its logit
    cache is its own, keyed by the members' specs. The info is the first member's (its checkpoint and
    history) with the ensemble's test top-1 and each member's."""
    members = [teacher_model(spec, data, device, log=log) for spec in specs]
    teacher = Teacher([model for model, _ in members], data, cache_dir() / "ensembles" / config_hash(specs, 12),
                      cache)
    test = teacher.clean_logits("test")
    info = {**members[0][1], "members": len(specs), "member_test_top1": [i["test_top1"] for _, i in members],
            "test_top1": topk_accuracy(test, data.targets("test").to(test.device)),
            "weights_sha256": " ".join(i["weights_sha256"] for _, i in members),
            "key": " ".join(i["key"] for _, i in members)}
    return teacher, info


def pretrained_teacher(name: str, data, device):
    """A timm model with its published ImageNet weights (e.g. "resnet50", "resnet50.a1_in1k"), for ImageNet-
    sized data with 1000 classes. Returns (model in eval mode, info with its test top-1 measured here)."""
    if data.num_classes != 1000:
        raise KDError(f"Pretrained teacher '{name}' predicts ImageNet's 1000 classes; this dataset has "
                      f"{data.num_classes}. Train the teacher here instead (no teacher_pretrained).")
    cached = pretrained_file(name)  # read from the local cache only: offline, a download would retry for a minute
    try:
        if cached is None:
            raise FileNotFoundError("not in the local Hugging Face cache")
        model = timm.create_model(name, pretrained=True, num_classes=1000, in_chans=data.in_chans,
                                  pretrained_cfg_overlay={"file": cached})
    except Exception as exc:  # not cached, a name without weights, a damaged file
        raise KDError(f"Could not load timm's pretrained weights for '{name}' ({type(exc).__name__}: "
                      f"{str(exc).strip().splitlines()[0] if str(exc).strip() else 'no message'}). They are read "
                      f"from the local Hugging Face cache (~/.cache/huggingface, or $HF_HOME): run `python -c "
                      f"\"import timm; timm.create_model('{name}', pretrained=True)\"` once where the network "
                      f"allows (and copy that cache here), or train the teacher with this repo instead.") from None
    model = place(model, device).eval().requires_grad_(False)
    info = {"arch": name, "path": None, "epoch": None, "weights_sha256": weights_sha256(model.state_dict()),
            "key": f"timm:{name}",
            "test_top1": topk_accuracy(predict(model, data, "test"), data.targets("test").to(device))}
    return model, info


def pretrained_file(name: str) -> str | None:
    """The file of timm's pretrained weights for `name` in the local Hugging Face cache (None if absent)."""
    from huggingface_hub import try_to_load_from_cache
    from timm.models import get_pretrained_cfg
    cfg = get_pretrained_cfg(name)
    hub = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    for file in ("model.safetensors", "pytorch_model.bin") if hub else ():
        found = try_to_load_from_cache(hub, file)
        if isinstance(found, str):
            return found
    return None


def load_checkpoint(path, data, device, arch: str | None = None, width: float | None = None):
    """A teacher from any checkpoint kd.checkpoints reads (this repo's, a bare state_dict, mdistiller's or
    RepDistiller's), checked against the dataset; `arch` (and `width`) name the model where the file does
    not. Its test top-1 is measured now and returned in the info dict."""
    state, meta = read_weights(path)
    if arch is not None and meta.get("arch", arch) != arch:
        raise KDError(f"Checkpoint {path} holds a {meta['arch']}, not the requested {arch}.")
    arch = arch or meta.get("arch")
    if arch is None:
        raise KDError(f"{path} does not say which model it holds (a bare state_dict, or another repo's "
                      f"checkpoint); name it with --teacher ARCH (and --teacher-width W if it is not 1).")
    if arch in CIFAR_MODELS:
        state = to_zoo(state)
    shapes = describe(state)
    classes = meta.get("num_classes", shapes.get("num_classes", data.num_classes))
    chans = meta.get("in_chans", shapes.get("in_chans", data.in_chans))
    if (classes, chans) != (data.num_classes, data.in_chans):
        raise KDError(f"Checkpoint {path} was trained for {classes} classes and {chans} input channels, but "
                      f"{data.name} has {data.num_classes} classes and {data.in_chans} channels.")
    width = width if width is not None else meta.get("width", 1.0)
    model = create_model(arch, classes, chans, width)
    missing, extra = sorted(set(model.state_dict()) - set(state)), sorted(set(state) - set(model.state_dict()))
    if missing or extra:
        raise KDError(f"Checkpoint {path} does not fit a {arch} of width {width:g}: "
                      + "; ".join(f"{what} {', '.join(keys[:6])}{' ...' if len(keys) > 6 else ''}"
                                  for what, keys in (("missing", missing), ("unexpected", extra)) if keys) + ".")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise KDError(f"Checkpoint {path} does not fit a {arch} of width {width:g}: "
                      f"{str(exc).splitlines()[-1].strip()}") from None
    model = place(model, device).eval().requires_grad_(False)
    info = {**meta, "arch": arch, "width": width, "num_classes": classes, "in_chans": chans}
    info["path"], info["weights_sha256"] = str(path), weights_sha256(state)
    info["test_top1"] = topk_accuracy(predict(model, data, "test"), data.targets("test").to(device))
    return model, info
