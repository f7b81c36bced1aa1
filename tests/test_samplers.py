"""KDAS sampling (kd/samplers.py): the sampler keeps exactly the top-K(t) by KL_TS and skips the outliers,
ranks per class where asked, caches its selection between re-selections, the per-enlarged-batch variant keeps
exactly B per enlarged batch; the ratio, period and exclusion schedules; bad options are clear errors."""
import pytest
import torch

from kd.config import RunConfig, base_config
from kd.data import Batch
from kd.errors import KDError
from kd.losses import kl_ts
from kd.objectives import QualityWeights
from kd.recipe import Recipe
from kd.samplers import KDAS, exclusion_schedule, make_kdas, period_schedule, ratio_schedule

C = 5


class Probe:
    """Student logits c_i * e_0 against a uniform teacher: KL(P_S || P_T) grows with c_i."""

    def __init__(self, strength: torch.Tensor):
        self.s = torch.zeros(len(strength), C)
        self.s[:, 0] = strength

    def student(self, idx):
        return self.s[idx]

    def teacher_clean(self, idx):
        self.teacher_calls = getattr(self, "teacher_calls", 0) + 1
        return torch.zeros(len(idx), C)

    num_classes = C

    def labels(self, idx):
        return idx % C


def selected(sampler, epoch, probe):
    return set(torch.cat(sampler.plan(epoch, probe)).tolist())


def test_kl_ts_grows_with_the_constructed_strength():
    s = Probe(torch.arange(6.0)).s
    assert (kl_ts(s, torch.zeros(6, C)).diff() > 0).all()


def test_sampler_keeps_exactly_the_top_k_and_skips_outliers():
    g = torch.Generator().manual_seed(0)
    strength = torch.randperm(60, generator=g).float() / 10  # small enough not to saturate the softmax
    pool = torch.arange(0, 60, 3)  # dataset indices 0, 3, ..., 57
    probe = Probe(strength)
    best = pool[strength[pool].argsort(descending=True)]
    top = make_kdas(pool, 4, seed=0, epochs=10, ratio="constant", start=0.3, end=0.3)
    assert selected(top, 1, probe) == set(best[:6].tolist())
    skipping = make_kdas(pool, 4, seed=0, epochs=10, ratio="constant", start=0.3, end=0.3, exclude=0.1)
    assert selected(skipping, 1, probe) == set(best[2:8].tolist())
    random = make_kdas(pool, 4, seed=0, epochs=10, ratio="constant", start=0.3, end=0.3, random=True)
    assert len(selected(random, 1, probe)) == 6 and selected(random, 1, probe) <= set(pool.tolist())


def test_balanced_selection_keeps_the_top_k_of_every_class_and_records_the_class_mix():
    pool = torch.arange(50)
    probe = Probe(torch.arange(50.0) / 10)  # KL_TS grows with the index: the global top 20% is 40..49
    plain = make_kdas(pool, 4, seed=0, epochs=10, ratio="constant", start=0.2, end=0.2)
    assert selected(plain, 1, probe) == set(range(40, 50))
    facts = plain.facts()
    assert {k: facts[k] for k in ("selected", "selected_per_class")} == {"selected": 10, "selected_per_class": "2 2 2 2 2"}
    skewed = Probe(torch.where(torch.arange(50) % C == 0, 10.0, 0.0) + torch.arange(50.0) / 100)
    assert {i % C for i in selected(plain, 2, skewed)} == {0}  # class 0 alone is the top 20%...
    assert plain.facts()["selected_per_class"] == "10 0 0 0 0"
    balanced = make_kdas(pool, 4, seed=0, epochs=10, ratio="constant", start=0.2, end=0.2, balanced=True)
    assert selected(balanced, 1, skewed) == set(range(40, 50))  # ...balanced keeps each class's top 20%
    assert balanced.facts()["selected_per_class"] == "2 2 2 2 2"


def test_every_selection_records_its_mean_kl_ts_and_the_pools_random_ones_too():
    """KDAS Finding 1's premise: a top-k selection holds more KL_TS than the pool, a random one about as much."""
    pool, probe = torch.arange(50), Probe(torch.arange(50.0) / 10)
    score = kl_ts(probe.s, torch.zeros(50, C))
    top = make_kdas(pool, 4, seed=0, epochs=10, ratio="constant", start=0.2, end=0.2)
    assert selected(top, 1, probe) == set(range(40, 50))
    assert top.facts()["selected_kl_ts"] == pytest.approx(score[40:].mean().item())
    assert top.facts()["pool_kl_ts"] == pytest.approx(score.mean().item())
    random = make_kdas(pool, 4, seed=0, epochs=10, ratio="constant", start=0.2, end=0.2, random=True)
    kept = sorted(selected(random, 1, probe))
    assert random.facts()["selected_kl_ts"] == pytest.approx(score[kept].mean().item())
    assert random.facts()["selected_kl_ts"] < top.facts()["selected_kl_ts"]


def test_the_teachers_clean_logits_are_computed_once_per_run():
    probe = Probe(torch.arange(20.0) / 4)
    sampler = make_kdas(torch.arange(20), 4, seed=0, epochs=10, ratio="constant", start=0.5, end=0.5, period=1)
    for epoch in range(1, 5):
        sampler.plan(epoch, probe)
    assert probe.teacher_calls == 1


def test_selection_is_cached_between_reselections():
    pool = torch.arange(20)
    sampler = make_kdas(pool, 4, seed=0, epochs=10, ratio="constant", start=0.25, end=0.25, period=2)
    first = selected(sampler, 1, Probe(torch.arange(20.0) / 4))
    assert first == set(range(15, 20))
    reversed_probe = Probe(torch.arange(20.0).flip(0) / 4)  # the student changed: now 0..4 are furthest
    assert selected(sampler, 2, reversed_probe) == first           # not a re-selection epoch
    assert selected(sampler, 3, reversed_probe) == set(range(5))   # re-selected with the changed student


def test_ratio_schedules_first_and_last_epochs():
    for kind in ("linear", "cosine"):
        ratio = ratio_schedule(kind, 0.6, 0.4, epochs=240)
        assert ratio(1) == pytest.approx(0.6) and ratio(240) == pytest.approx(0.4)
        assert all(ratio(e) >= ratio(e + 1) - 1e-12 for e in range(1, 240))
    up = ratio_schedule("linear", 0.4, 0.6, 10)
    assert (up(1), up(10)) == (pytest.approx(0.4), pytest.approx(0.6))
    # the paper's K(t) = max(K_min, K_init - alpha * t) with alpha reaching K_min at the last epoch
    linear = ratio_schedule("linear", 0.6, 0.4, 11)
    assert all(linear(t + 1) == pytest.approx(max(0.4, 0.6 - 0.02 * t)) for t in range(11))
    assert ratio_schedule("constant", 0.5, 0.5, 10)(7) == 0.5
    warm = ratio_schedule("cosine", 0.6, 0.4, 20, warmup=5)
    assert [warm(e) for e in (1, 5)] == [1.0, 1.0] and warm(6) == pytest.approx(0.6) and warm(20) == pytest.approx(0.4)
    with pytest.raises(KDError):
        ratio_schedule("linear", 0.0, 0.4, 10)


def test_official_period_and_exclusion_schedules():
    is_sampling = period_schedule([1, 3, 5, 10], epochs=240)
    epochs = [e for e in range(1, 241) if is_sampling(e)]
    assert epochs[:3] == [1, 2, 3] and 61 in epochs and 62 not in epochs and 64 in epochs
    assert len(epochs) == 60 + 20 + 12 + 6
    excluded = exclusion_schedule(0.05, 240)
    assert excluded(150) == 0.05 and excluded(195) == pytest.approx(0.025) and excluded(240) == 0.0


def test_per_enlarged_batch_selection_keeps_exactly_b():
    pool = torch.arange(22)
    sampler = make_kdas(pool, 4, seed=0, epochs=10, ratio="constant", start=0.5, end=0.5, mode="batch", period=2)
    plan = sampler.plan(1, probe=None)
    assert [len(b) for b in plan] == [8, 8, 6]
    model = torch.nn.Identity()  # logits = inputs, so we choose each sample's KL_TS
    kept = []
    for idx in plan:
        x = torch.zeros(len(idx), C)
        x[:, 0] = idx.float()  # larger dataset index, larger KL_TS
        batch, t = sampler.select(1, Batch(x, idx % C, idx, None), torch.zeros(len(idx), C), model)
        assert len(batch.y) == (4 if len(idx) > 4 else len(idx)) and len(t) == len(batch.y)
        assert set(batch.idx.tolist()) == set(idx[idx.float().argsort(descending=True)[:4]].tolist())
        kept += batch.idx.tolist()
    assert set(sampler.selected.tolist()) == set(kept) and len(kept) == 4 + 4 + 4
    counts = torch.bincount(torch.tensor(kept) % C, minlength=C).tolist()
    assert sampler.facts() == {"selected": 12, "selected_per_class": " ".join(map(str, counts))}
    later = sampler.plan(2, probe=None)  # not a re-selection epoch: the kept samples, in batches of B
    assert sorted(torch.cat(later).tolist()) == sorted(kept) and [len(b) for b in later] == [4, 4, 4]
    assert [len(b) for b in sampler.plan(3, probe=None)] == [8, 8, 6]  # re-selection: enlarged batches again


def test_bad_kdas_options_are_clear_errors():
    with pytest.raises(KDError, match="mode"):
        KDAS(torch.arange(4), 2, 0, lambda e: 0.5, lambda e: True, mode="local")
    with pytest.raises(KDError, match="Class-balanced KDAS selection ranks the whole pool"):
        make_kdas(torch.arange(4), 2, 0, 10, mode="batch", balanced=True)
    with pytest.raises(KDError, match="gamma"):
        QualityWeights(gamma=2.0)
    p = {"dataset": "fashion_mnist", "student": "resnet8", "teacher": "resnet8", "teacher_recipe": Recipe(),
         "recipe": Recipe()}
    config = base_config("test", p, "kdas", 0, sampler={"ratio": "linear", "spead": 1})
    with pytest.raises(KDError, match="Bad KDAS sampler options"):
        RunConfig.from_dict(config).check()
