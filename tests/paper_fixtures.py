"""The paper profiles end to end without the papers' data (issue 18.4): tiny on-disk datasets in the layout
the paper profiles read (torchvision's CIFAR-10/100 pickles, an ImageNet-style ImageFolder tree of 1,000
classes) and each profile cut to a few short epochs, with its real models, batch sizes and schedule shape.
ImageNet profiles train at FIXTURE_PIXELS instead of 224 (the models and heads are the papers', the cost a
fiftieth), and their "pretrained" teachers load randomly initialised weights that this module writes into a
throw-away Hugging Face cache in timm's layout (read offline), so that the whole loading path runs.

These are fixtures: random pixels and weights, written by the test (or this script) into its own folder,
loaded with torchvision's checksum check switched off for that folder's files only, teachers trained into a
throw-away KD_CACHE. They are never a fall-back for missing data and their accuracies mean nothing.

    python -m tests.paper_fixtures kdas_finding3 --images 50000 --device cuda   # one paper grid, 1 seed, on a GPU
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np

EPOCHS = 4  # the fewest that keep every profile's epoch-valued settings (ESKD stops, snapshots) apart
CIFAR_FINDINGS = ("kdas_finding3", "kdas_finding1", "kdas_finding2", "kdas_finding4", "kdas_method",
                  "bigger_teachers", "early_stopped_teachers", "fidelity_ensembles", "fidelity_optimisation",
                  "fidelity_augmentation")
IMAGENET_FINDINGS = ("eskd", "dist_stronger_teacher", "vanillakd_data_scale")
FIXTURE_PIXELS = 32  # ImageNet-profile fixtures: the side their images are cropped to (224 in the papers)


def write_cifar(root: Path, num_classes: int, train_per_class: int, test_per_class: int, seed: int = 0) -> Path:
    """Random images in torchvision's CIFAR-10 / CIFAR-100 python layout under `root`."""
    rng = np.random.default_rng(seed)

    def split(per_class):
        labels = np.repeat(np.arange(num_classes), per_class)
        return rng.integers(0, 256, (len(labels), 3 * 32 * 32), dtype=np.uint8), labels.tolist()

    def dump(path, obj):
        with open(path, "wb") as f:
            pickle.dump(obj, f)

    (train_x, train_y), (test_x, test_y) = split(train_per_class), split(test_per_class)
    names = [f"class{i}" for i in range(num_classes)]
    if num_classes == 100:
        folder = root / "cifar-100-python"
        folder.mkdir(parents=True, exist_ok=True)
        dump(folder / "train", {"data": train_x, "fine_labels": train_y})
        dump(folder / "test", {"data": test_x, "fine_labels": test_y})
        dump(folder / "meta", {"fine_label_names": names})
    else:
        folder = root / "cifar-10-batches-py"
        folder.mkdir(parents=True, exist_ok=True)
        for i, part in enumerate(np.array_split(np.arange(len(train_y)), 5), 1):
            dump(folder / f"data_batch_{i}", {"data": train_x[part], "labels": [train_y[j] for j in part]})
        dump(folder / "test_batch", {"data": test_x, "labels": test_y})
        dump(folder / "batches.meta", {"label_names": names})
    return root


def write_imagefolder(root: Path, classes: int = 1000, per_class: int = 1, seed: int = 0) -> Path:
    """Random FIXTURE_PIXELS-sided PNGs in an ImageNet-style tree: root/train/<class>/, root/val/<class>/."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    for split in ("train", "val"):
        for c in range(classes):
            folder = root / split / f"n{c:08d}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, (FIXTURE_PIXELS, FIXTURE_PIXELS, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def write_pretrained(hf_home: Path, names) -> Path:
    """Randomly initialised weights of timm models `names` (e.g. "resnet34.tv_in1k") where timm looks for
    their published ones: the Hugging Face cache layout under `hf_home`, read with HF_HUB_OFFLINE=1."""
    import timm
    from safetensors.torch import save_file
    revision = "0" * 40
    for name in names:
        model = timm.create_model(name, pretrained=False)
        repo = hf_home / "hub" / f"models--{model.pretrained_cfg['hf_hub_id'].replace('/', '--')}"
        (repo / "snapshots" / revision).mkdir(parents=True, exist_ok=True)
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / "main").write_text(revision)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()},
                  repo / "snapshots" / revision / "model.safetensors")
    return hf_home


def short(value, epochs: int = EPOCHS):
    """A profile (or any value in it) with every Recipe's schedule squeezed into `epochs` epochs."""
    from kd.recipe import Recipe
    if isinstance(value, Recipe):
        return value.scaled(epochs / value.epochs)
    if isinstance(value, dict):
        return {k: short(v, epochs) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(short(v, epochs) for v in value)
    return value


def short_profile(p: dict, epochs: int = EPOCHS) -> dict:
    """The paper profile `p` in `epochs` epochs: recipes squeezed, and the settings counted in epochs (ESKD's
    stops) moved to the same fraction of training."""
    q = short(p, epochs)

    def at(epoch, recipe):
        return max(1, round(epoch * epochs / recipe.epochs))
    for key in ("stops", "verdict_stop"):
        if key in q:
            q[key] = [at(e, p["recipe"]) for e in q[key]] if isinstance(q[key], list) else at(q[key], p["recipe"])
    if q["dataset"] == "imagefolder":
        q["data"] = {**q.get("data", {}), "image_size": FIXTURE_PIXELS, "workers": 2}
    return q


@contextlib.contextmanager
def fixture_world(root: Path):
    """Teachers and logit caches in a throw-away KD_CACHE under `root`, "pretrained" weights in a throw-away
    Hugging Face cache read offline; torchvision's CIFAR checksum check off (the fixture files are not the
    published ones)."""
    # huggingface_hub reads its environment once, on import (timm imports it): patch what it read, too
    with mock.patch.dict(os.environ, {"KD_CACHE": str(root / "cache"), "HF_HOME": str(root / "hf"),
                                      "HF_HUB_OFFLINE": "1"}), \
            mock.patch("huggingface_hub.constants.HF_HUB_CACHE", str(root / "hf" / "hub")), \
            mock.patch("huggingface_hub.constants.HF_HUB_OFFLINE", True), \
            mock.patch("torchvision.datasets.cifar.check_integrity", lambda *_: True):
        yield


def run_paper_profile(name: str, root: Path, device: str = "cpu", one_run: bool = False, seeds: int = 1) -> int:
    """Run finding `name`'s short paper profile on the fixture data under `root` in this process (results and
    figures under `root` too); `one_run` keeps the grid's first run that has a teacher. Returns the exit code."""
    from kd import harness
    module = importlib.import_module(f"experiments.{name}")
    grid, profile = module.grid, short_profile(module.PROFILES["paper"])

    def fixture_grid(p, n):
        configs = grid(p, n)
        return [next(c for c in configs if c.get("teacher") is not None)] if one_run else configs
    teachers = [c["teacher"] for c in fixture_grid(profile, seeds) if c.get("teacher") is not None]
    pretrained = {t["model"] for t in teachers if t.get("pretrained")}
    write_pretrained(root / "hf", pretrained)
    data = root / ("imagenet" if profile["dataset"] == "imagefolder" else "data")
    argv = ["--profile", "paper", "--seeds", str(seeds), "--device", device, "--data-dir", str(data),
            "--results-root", str(root / "results"), "--figures-root", str(root / "figures")]
    with fixture_world(root), mock.patch.dict(module.PROFILES, {"paper": profile}), \
            mock.patch.object(module, "grid", fixture_grid), \
            mock.patch.object(harness, "_report", (lambda *_: 0) if one_run else harness._report):
        return harness.main(module, argv, isolate=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("findings", nargs="*", default=list(CIFAR_FINDINGS + IMAGENET_FINDINGS))
    ap.add_argument("--images", type=int, default=1000, help="training images of the fixture (test: a tenth)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--one-run", action="store_true", help="the first run with a teacher of each grid only")
    ap.add_argument("--root", type=Path, help="where the fixture and its results go (default: a temp folder)")
    args = ap.parse_args()
    root = args.root or Path(tempfile.mkdtemp(prefix="kd_paper_fixture_"))
    codes = {}
    for name in args.findings:
        classes = 10 if name in ("bigger_teachers", "early_stopped_teachers") else 100
        data = root / "data"
        if name in IMAGENET_FINDINGS:
            if not (root / "imagenet").is_dir():
                write_imagefolder(root / "imagenet", per_class=max(1, args.images // 1000))
        elif not (data / ("cifar-10-batches-py" if classes == 10 else "cifar-100-python")).is_dir():
            write_cifar(data, classes, max(1, args.images // classes), max(1, args.images // classes // 10))
        start = time.perf_counter()
        codes[name] = run_paper_profile(name, root, args.device, args.one_run)
        print(f"== {name}: exit {codes[name]}, {time.perf_counter() - start:.0f} s, {EPOCHS} epochs on "
              f"{args.images} fixture images ({root})", flush=True)
    return max(codes.values(), default=0)


if __name__ == "__main__":
    sys.exit(main())
