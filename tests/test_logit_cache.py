"""The teacher-logit cache is exact, persistent, bounded and bypassed for unkeyed views; lock-step
students share one teacher pass and train exactly as they would alone."""
import pytest
import torch
from conftest import distinct_views

from kd.data import Batch, balanced_subset
from kd.logit_cache import Teacher
from kd.models import create_model
from kd.objectives import DKD, KD
from kd.recipe import Recipe
from kd.samplers import Shuffle
from kd.train import fit

RECIPE = Recipe(epochs=2, batch_size=64, lr=0.05)


@pytest.fixture(scope="module")
def teacher():
    torch.manual_seed(0)
    return create_model("resnet8", 10, 1, width=0.5).eval().to(memory_format=torch.channels_last)


def distill(data, teacher, pool, seed=1, objectives=(KD(temperature=4.0),)):
    students = []
    for _ in objectives:
        torch.manual_seed(seed)
        students.append(create_model("resnet8", 10, 1, width=0.5))
    results = fit(students, list(objectives), data, Shuffle(pool, 64, seed), RECIPE, seed, teacher,
                  log=lambda m: None)
    return students, results


def test_cached_logits_equal_a_fresh_forward_for_random_views(fmnist, teacher):
    logits = Teacher([teacher], fmnist)
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(fmnist.num_train, (300,), generator=g).unique()
    logits.prepare([idx], seed=0, epoch=1)  # fills the table with this epoch's views of idx
    filled = logits.forwards
    view = fmnist.epoch_views(0, 1)[idx]
    looked_up = logits.train_logits(Batch(fmnist.train_images(idx, view), fmnist.train_y[idx], idx, view))
    assert filled == len(idx) and logits.forwards == filled  # a lookup, no forward
    with torch.no_grad():
        fresh = teacher(fmnist.train_images(idx, view))
    assert torch.allclose(looked_up, fresh, atol=1e-5, rtol=1e-5)
    clean = logits.clean_logits("train", idx[:50])
    with torch.no_grad():
        assert torch.allclose(clean, teacher(fmnist.images("train", idx[:50])), atol=1e-5, rtol=1e-5)


def test_a_samples_logits_do_not_depend_on_the_chunk_that_fills_them(fmnist, teacher):
    """Which run of a parallel sweep fills a view first decides the chunk it is computed in: the bits must
    not depend on it (--jobs 1 and --jobs 2 give identical rows)."""
    idx = torch.arange(300) * 7
    view = fmnist.epoch_views(0, 1)[idx]

    def filled(n):
        logits = Teacher([teacher], fmnist)
        logits.prepare([idx[:n]], seed=0, epoch=1)
        return logits.train_logits(Batch(None, None, idx[:n], view[:n]))
    together = filled(len(idx))
    for n in (0, 1, 2, 3, 5, 8, 15, 16, 17, 31, 64, 129):
        assert torch.equal(filled(n), together[:n]), n


def test_distillation_is_identical_with_and_without_the_cache(fmnist, teacher):
    pool = balanced_subset(fmnist.train_y, per_class=40, seed=0)
    (cached,), (rc,) = distill(fmnist, Teacher([teacher], fmnist, cache=True), pool)
    (plain,), (rp,) = distill(fmnist, Teacher([teacher], fmnist, cache=False), pool)
    assert all(torch.equal(a, b) for a, b in zip(cached.state_dict().values(), plain.state_dict().values()))
    assert rp["teacher_forwards"] == 2 * 400 and rc["teacher_forwards"] == distinct_views(fmnist, pool, 1, 2)


def test_the_cache_persists_and_merges_across_runs_and_processes(fmnist, teacher, tmp_path):
    pool = balanced_subset(fmnist.train_y, per_class=40, seed=0)
    first = Teacher([teacher], fmnist, tmp_path / "logits")
    _, (r1,) = distill(fmnist, first, pool)
    assert r1["teacher_forwards"] > 0 and any((tmp_path / "logits").iterdir())
    # a later run (another process: a new object) with the same seed needs no teacher forward at all
    _, (r2,) = distill(fmnist, Teacher([teacher], fmnist, tmp_path / "logits"), pool)
    assert r2["teacher_forwards"] == 0
    # two writers that filled different views: the file ends up with both
    a, b = (Teacher([teacher], fmnist, tmp_path / "logits") for _ in range(2))
    a.prepare([pool], seed=5, epoch=1)
    b.prepare([pool], seed=6, epoch=1)
    a.flush()
    b.flush()
    c = Teacher([teacher], fmnist, tmp_path / "logits")
    c.prepare([pool], seed=5, epoch=1)
    c.prepare([pool], seed=6, epoch=1)
    assert c.forwards == 0


def test_unkeyed_views_and_oversized_tables_go_through_the_teacher(fmnist, teacher, monkeypatch):
    logits = Teacher([teacher], fmnist)
    idx = torch.arange(8)
    batch = Batch(fmnist.images("train", idx), fmnist.train_y[idx], idx, None)  # e.g. a MixUp batch
    logits.train_logits(batch)
    assert logits.forwards == 8
    monkeypatch.setenv("KD_LOGIT_CACHE_GB", "0.01")  # 10 MiB: the 60k x 50-view table does not fit
    small = Teacher([teacher], fmnist)
    pool = balanced_subset(fmnist.train_y, per_class=10, seed=0)
    small.prepare([pool], seed=1, epoch=1)
    assert small.forwards == 0  # no table to fill
    small.clean_logits("test")
    small.clean_logits("test")
    assert small.forwards == len(fmnist.test_y)  # the small clean-view table is still kept
    small.forwards = 0
    _, (r,) = distill(fmnist, small, pool)
    assert r["teacher_forwards"] == 2 * 100


def test_lockstep_students_share_the_teacher_pass_and_train_as_alone(fmnist, teacher):
    pool = balanced_subset(fmnist.train_y, per_class=20, seed=0)
    objectives = (KD(temperature=4.0), DKD(warmup=1))
    shared = Teacher([teacher], fmnist, cache=False)
    together, results = distill(fmnist, shared, pool, objectives=objectives)
    assert shared.forwards == len(fmnist.test_y) + 2 * 200  # one teacher pass for both students
    for model, objective, result in zip(together, objectives, results):
        (alone,), (r,) = distill(fmnist, Teacher([teacher], fmnist, cache=False), pool,
                                objectives=(objective,))
        assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), alone.state_dict().values()))
        assert r["final"]["test_top1"] == result["final"]["test_top1"]


@pytest.mark.parametrize("damage", ["truncated", "flipped byte", "no checksum"])
def test_a_damaged_logit_file_is_never_used_and_is_rebuilt(fmnist, teacher, tmp_path, damage):
    pool = balanced_subset(fmnist.train_y, per_class=40, seed=0)
    _, (r1,) = distill(fmnist, Teacher([teacher], fmnist, tmp_path / "logits"), pool)
    path = next((tmp_path / "logits").glob("*train-views.pt"))
    raw = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "flipped byte":  # still a loadable file, with other numbers in it
        path.write_bytes(raw[:-100] + bytes([raw[-100] ^ 1]) + raw[-99:])
    else:
        path.with_name(path.name + ".sha256").unlink()
    (student,), (r2,) = distill(fmnist, Teacher([teacher], fmnist, tmp_path / "logits"), pool)
    assert r2["teacher_forwards"] == r1["teacher_forwards"]  # every logit computed again, none read
    (again,), (r3,) = distill(fmnist, Teacher([teacher], fmnist, tmp_path / "logits"), pool)
    assert r3["teacher_forwards"] == 0  # the rewritten file is whole
    assert all(torch.equal(a, b) for a, b in zip(student.state_dict().values(), again.state_dict().values()))
