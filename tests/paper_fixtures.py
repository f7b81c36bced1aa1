"""The paper profiles end to end without the papers' data (issue 18.4): tiny on-disk datasets in the layout
the paper profiles read (torchvision's CIFAR-10/100 pickles) and each profile cut to a few short epochs,
with its real models, batch sizes and schedule shape.

These are fixtures: random pixels, written by the test (or this script) into its own folder, loaded with
torchvision's checksum check switched off for that folder's files only, teachers trained into a throw-away
KD_CACHE. They are never a fall-back for missing data and their accuracies mean nothing.

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
    stops, early-stopped teachers' snapshots) moved to the same fraction of training."""
    q = short(p, epochs)

    def at(epoch, recipe):
        return max(1, round(epoch * epochs / recipe.epochs))
    for key in ("stops", "verdict_stop"):
        if key in q:
            q[key] = [at(e, p["recipe"]) for e in q[key]] if isinstance(q[key], list) else at(q[key], p["recipe"])
    if "epochs" in q:  # early_stopped_teachers: the teacher epochs its students distil from
        q["epochs"] = [at(e, p["teacher_recipe"]) for e in q["epochs"]]
    return q


@contextlib.contextmanager
def fixture_world(root: Path):
    """Teachers and logit caches in a throw-away KD_CACHE under `root`; torchvision's CIFAR checksum check off
    (the fixture files are not the published ones)."""
    with mock.patch.dict(os.environ, {"KD_CACHE": str(root / "cache")}), \
            mock.patch("torchvision.datasets.cifar.check_integrity", lambda *_: True):
        yield


def run_paper_profile(name: str, root: Path, device: str = "cpu", one_run: bool = False, seeds: int = 1) -> int:
    """Run finding `name`'s short paper profile on the fixture data under `root` in this process (results and
    figures under `root` too); `one_run` keeps the grid's first run that has a teacher. Returns the exit code."""
    from kd import harness
    module = importlib.import_module(f"experiments.{name}")
    grid = module.grid

    def fixture_grid(p, n):
        configs = grid(p, n)
        return [next(c for c in configs if c.get("teacher") is not None)] if one_run else configs
    argv = ["--profile", "paper", "--seeds", str(seeds), "--device", device, "--data-dir", str(root / "data"),
            "--results-root", str(root / "results"), "--figures-root", str(root / "figures")]
    with fixture_world(root), mock.patch.dict(module.PROFILES, {"paper": short_profile(module.PROFILES["paper"])}), \
            mock.patch.object(module, "grid", fixture_grid), \
            mock.patch.object(harness, "_report", (lambda *_: 0) if one_run else harness._report):
        return harness.main(module, argv, isolate=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("findings", nargs="*", default=list(CIFAR_FINDINGS))
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
        if not (data / ("cifar-10-batches-py" if classes == 10 else "cifar-100-python")).is_dir():
            write_cifar(data, classes, max(1, args.images // classes), max(1, args.images // classes // 10))
        start = time.perf_counter()
        codes[name] = run_paper_profile(name, root, args.device, args.one_run)
        print(f"== {name}: exit {codes[name]}, {time.perf_counter() - start:.0f} s, {EPOCHS} epochs on "
              f"{args.images} fixture images ({root})", flush=True)
    return max(codes.values(), default=0)


if __name__ == "__main__":
    sys.exit(main())
