"""Weights in and out (kd.checkpoints): mdistiller / RepDistiller CIFAR checkpoints map key by key onto the
zoo, what does not map is refused by name, and a student distilled from such a checkpoint is saved where
timm loads it.

Their layout, from their public source (mdistiller/models/cifar/resnet.py and wrn.py, RepDistiller's
models/): ResNets of conv1, bn1, layer1..3 of BasicBlocks (conv1, bn1, conv2, bn2 and, where the stride or
the width changes, downsample.0 / downsample.1), fc; WRNs of conv1, block1..3.layer.j (bn1, conv1, bn2,
conv2 and, where the width changes, convShortcut), bn1, fc. A teacher file is a dict whose "model" is that
state_dict. The layers' semantics (shortcut type, where BN sits) were checked once against their code
outside the repo: every zoo model's logits equal theirs to 3e-7."""
import pytest
import torch

from kd.checkpoints import to_zoo
from kd.cli import main
from kd.errors import KDError
from kd.models import CIFAR_MODELS, create_model

RESNETS = {"resnet8": (8, (16, 16, 32, 64)), "resnet14": (14, (16, 16, 32, 64)), "resnet20": (20, (16, 16, 32, 64)),
           "resnet32": (32, (16, 16, 32, 64)), "resnet44": (44, (16, 16, 32, 64)),
           "resnet56": (56, (16, 16, 32, 64)), "resnet110": (110, (16, 16, 32, 64)),
           "resnet8x4": (8, (32, 64, 128, 256)), "resnet32x4": (32, (32, 64, 128, 256))}
WRNS = {"wrn_16_1": (16, 1), "wrn_16_2": (16, 2), "wrn_16_4": (16, 4), "wrn_16_8": (16, 8), "wrn_40_1": (40, 1),
        "wrn_40_2": (40, 2)}


def bn(prefix: str, c: int) -> dict:
    return {f"{prefix}.weight": torch.rand(c) + 0.5, f"{prefix}.bias": torch.randn(c) * 0.1,
            f"{prefix}.running_mean": torch.randn(c) * 0.1, f"{prefix}.running_var": torch.rand(c) + 0.5,
            f"{prefix}.num_batches_tracked": torch.tensor(0)}


def their_state(name: str, num_classes: int = 100, in_chans: int = 3) -> dict:
    """A state_dict with exactly mdistiller's key names and shapes for one of its CIFAR models."""
    s = {}
    if name in RESNETS:
        depth, f = RESNETS[name]
        s["conv1.weight"] = torch.randn(f[0], in_chans, 3, 3) * 0.1
        s.update(bn("bn1", f[0]))
        cin = f[0]
        for layer in (1, 2, 3):
            planes, stride = f[layer], 1 if layer == 1 else 2
            for j in range((depth - 2) // 6):
                p = f"layer{layer}.{j}"
                s[f"{p}.conv1.weight"] = torch.randn(planes, cin, 3, 3) * 0.1
                s.update(bn(f"{p}.bn1", planes))
                s[f"{p}.conv2.weight"] = torch.randn(planes, planes, 3, 3) * 0.1
                s.update(bn(f"{p}.bn2", planes))
                if j == 0 and (stride != 1 or cin != planes):
                    s[f"{p}.downsample.0.weight"] = torch.randn(planes, cin, 1, 1) * 0.1
                    s.update(bn(f"{p}.downsample.1", planes))
                cin = planes
        last = f[3]
    else:
        depth, k = WRNS[name]
        ch = (16, 16 * k, 32 * k, 64 * k)
        s["conv1.weight"] = torch.randn(16, in_chans, 3, 3) * 0.1
        for block in (1, 2, 3):
            for j in range((depth - 4) // 6):
                p, cin = f"block{block}.layer.{j}", ch[block - 1] if j == 0 else ch[block]
                s.update(bn(f"{p}.bn1", cin))
                s[f"{p}.conv1.weight"] = torch.randn(ch[block], cin, 3, 3) * 0.1
                s.update(bn(f"{p}.bn2", ch[block]))
                s[f"{p}.conv2.weight"] = torch.randn(ch[block], ch[block], 3, 3) * 0.1
                if cin != ch[block]:
                    s[f"{p}.convShortcut.weight"] = torch.randn(ch[block], cin, 1, 1) * 0.1
        s.update(bn("bn1", ch[3]))
        last = ch[3]
    s["fc.weight"], s["fc.bias"] = torch.randn(num_classes, last) * 0.1, torch.zeros(num_classes)
    return s


@pytest.mark.parametrize("name", CIFAR_MODELS)
def test_every_key_of_their_checkpoint_maps_onto_the_zoo_and_none_is_left(name):
    theirs = their_state(name)
    mapped = to_zoo(theirs)
    ours = create_model(name, 100, 3).state_dict()
    assert len(mapped) == len(theirs)  # nothing dropped, nothing merged
    assert set(mapped) == set(ours)  # nothing missing, nothing left over
    assert all(mapped[k].shape == ours[k].shape for k in ours)


def test_what_does_not_map_is_refused_by_name_and_timms_resnets_are_left_alone():
    theirs = {**their_state("resnet8"), "layer1.0.se.fc.weight": torch.zeros(1)}
    with pytest.raises(KDError, match=r"layer1\.0\.se\.fc\.weight"):
        to_zoo(theirs)
    timm_resnet18 = create_model("resnet18", 10, 3).state_dict()  # conv1, bn1, layer1..4, fc: timm's own layout
    assert set(to_zoo({"stem.0.weight": torch.zeros(1)})) == {"stem.0.weight"}
    assert "layer4.0.conv1.weight" in timm_resnet18  # kd.teachers maps only models of the CIFAR zoo


def test_distil_from_an_mdistiller_checkpoint_then_load_the_student_with_timm(tmp_path, capsys):
    """Their teacher file (a dict whose 'model' is the state_dict, a DataParallel prefix and all), a
    student distilled from it, saved where timm loads it, with the numbers the run recorded."""
    import pandas as pd
    import timm
    state = {f"module.{k}": v for k, v in their_state("resnet8", num_classes=10, in_chans=1).items()}
    ckpt = tmp_path / "ckpt_epoch_240.pth"
    torch.save({"epoch": 240, "model": state, "accuracy": 0.0}, ckpt)
    out = tmp_path / "out"
    assert main(["distill", "--student", "resnet8", "--width", "0.5", "--teacher", "resnet8", "--teacher-ckpt",
                 str(ckpt), "--epochs", "1", "--subset-fraction", "0.01", "--out", str(out), "--device", "cpu"]) == 0
    row = pd.read_csv(out / "runs.csv").iloc[0]
    assert row["teacher.checkpoint"] == str(ckpt) and row["teacher.model"] == "resnet8"
    folder = out / "students" / row.run_id
    assert {p.name for p in folder.iterdir()} == {"final.safetensors", "best.safetensors", "config.json", "cli.yaml"}
    model = timm.create_model("resnet8", num_classes=10, in_chans=1, width=0.5,
                              checkpoint_path=str(folder / "final.safetensors"))
    from kd.datasets import load_dataset
    from kd.metrics import topk_accuracy
    from kd.train import predict
    data = load_dataset("fashion_mnist", None, torch.device("cpu"))
    assert topk_accuracy(predict(model, data, "test"), data.targets("test")) == pytest.approx(row.final_test_top1)
    capsys.readouterr()
    assert main(["eval", str(folder / "final.safetensors"), "--teacher-ckpt", str(ckpt), "--teacher", "resnet8",
                 "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert f"top1: {row.final_test_top1:.4f}" in printed and "agreement" in printed


def test_a_bare_state_dict_needs_its_model_named(tmp_path):
    bare = tmp_path / "bare.pt"
    torch.save(create_model("resnet8", 10, 1, 0.5).state_dict(), bare)
    assert main(["eval", str(bare), "--device", "cpu"]) == 2  # which model? said before any compute
    assert main(["eval", str(bare), "--model", "resnet8", "--device", "cpu"]) == 2  # width 1 does not fit
    assert main(["eval", str(bare), "--model", "resnet8", "--width", "0.5", "--device", "cpu"]) == 0


def test_timm_pretrained_teachers_come_from_the_local_hugging_face_cache(tmp_path, monkeypatch):
    """A name whose weights are in the local cache loads from there (no network); one whose are not is a
    clear error at once, not a minute of download retries."""
    import timm
    from huggingface_hub import constants
    from safetensors.torch import save_file

    from kd.teachers import pretrained_file, pretrained_teacher
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(KDError, match="local Hugging Face cache"):
        pretrained_teacher("resnet18.tv_in1k", type("ImageNetLike", (), {"num_classes": 1000, "in_chans": 3}), "cpu")
    weights = create_model("resnet18", 1000, 3).state_dict()
    snapshot = tmp_path / "models--timm--resnet18.tv_in1k" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (tmp_path / "models--timm--resnet18.tv_in1k" / "refs").mkdir()
    (tmp_path / "models--timm--resnet18.tv_in1k" / "refs" / "main").write_text("abc123")
    save_file(weights, str(snapshot / "model.safetensors"))
    cached = pretrained_file("resnet18.tv_in1k")
    assert cached == str(snapshot / "model.safetensors")
    model = timm.create_model("resnet18.tv_in1k", pretrained=True, pretrained_cfg_overlay={"file": cached})
    assert torch.equal(model.state_dict()["fc.weight"], weights["fc.weight"])
