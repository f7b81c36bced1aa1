"""The classic CIFAR model zoo (CRD / mdistiller layout), registered in timm's registry.

Every model of this repo is built by `timm.create_model(name, num_classes=..., in_chans=...)`: the CIFAR
ResNets and WRNs below are registered with `register_model` and built by `build_model_with_cfg` from a
default cfg (input size, mean/std of CIFAR-100, classifier name), like timm's own; everything else
(resnet18, mobilenetv2_100, ...) is timm's. CIFAR models have a 3x3 stride-1 stem and no max-pool, so they
work on 28x28 and 32x32 images, take a `width` multiplier (a sweep can grow a teacher in width as well as
in depth), and have timm's interface: forward_features (the last feature map), forward_head(pre_logits=),
get_classifier, reset_classifier.
"""
from __future__ import annotations

from functools import partial

import timm
import torch
import torch.nn as nn
from timm.layers import BatchNormAct2d, ClassifierHead, create_conv2d, make_divisible
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models.resnet import BasicBlock
from timm.models.resnetv2 import DownsampleConv, PreActBasic

from kd.data import MEAN_STD
from kd.errors import KDError

# Published parameter counts with CIFAR-100 heads (Tian et al., CRD, ICLR 2020, and mdistiller's zoo),
# checked by tests/test_models.py. resnet20's 0.27M is He et al.'s CIFAR-10 figure: with a 100-class head
# the papers' resnet20 has 0.278M.
PUBLISHED_PARAMS_M = {"resnet20": 0.27, "resnet56": 0.86, "resnet110": 1.73, "resnet8x4": 1.23,
                      "resnet32x4": 7.43, "wrn_40_2": 2.26, "wrn_40_1": 0.57, "wrn_16_2": 0.70}


def _scaled(channels, width: float) -> tuple[int, ...]:
    """Channels times the width multiplier, rounded to multiples of 8 as timm does (suits SIMD; it was also
    the first workaround for oneDNN's strided 1x1 convolution bugs, which kd.device.place now avoids)."""
    return tuple(c if width == 1 else make_divisible(c * width, 8) for c in channels)


class _TimmInterface(nn.Module):
    """timm's classifier interface over `forward_features` and a ClassifierHead in `self.head`."""

    def forward_head(self, x, pre_logits: bool = False):
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x):
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None):
        self.num_classes = num_classes
        self.head.reset(num_classes, global_pool)

    def _init_convs(self):
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


class CifarResNet(_TimmInterface):
    """He et al. (2016) CIFAR ResNet as in CRD/mdistiller (the papers' code): 3x3 stem, stages of timm
    BasicBlocks with 1x1 conv + BN projection shortcuts, global pool, linear head."""

    def __init__(self, depth: int, channels=(16, 16, 32, 64), num_classes=100, in_chans=3, width=1.0,
                 drop_rate=0.0):
        super().__init__()
        if (depth - 2) % 6:
            raise KDError(f"CIFAR ResNet depth must be 6n+2 (8, 14, 20, ...), got {depth}.")
        stem, *stages = _scaled(channels, width)
        self.num_classes, self.in_chans = num_classes, in_chans
        self.stem = nn.Sequential(create_conv2d(in_chans, stem, 3), nn.BatchNorm2d(stem), nn.ReLU(inplace=True))
        n, blocks, cin = (depth - 2) // 6, [], stem
        for i, c in enumerate(stages):
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                down = None
                if stride != 1 or cin != c:
                    down = nn.Sequential(create_conv2d(cin, c, 1, stride=stride), nn.BatchNorm2d(c))
                blocks.append(BasicBlock(cin, c, stride=stride, downsample=down))
                cin = c
        self.stages = nn.Sequential(*blocks)
        self.num_features = cin
        self.head = ClassifierHead(cin, num_classes, drop_rate=drop_rate)
        self._init_convs()

    def forward_features(self, x):
        return self.stages(self.stem(x))


class WideResNet(_TimmInterface):
    """Zagoruyko & Komodakis WRN-d-k: pre-activation timm blocks, 1x1 projection shortcuts."""

    def __init__(self, depth: int, widen: int, num_classes=100, in_chans=3, width=1.0, drop_rate=0.0):
        super().__init__()
        if (depth - 4) % 6:
            raise KDError(f"WRN depth must be 6n+4 (16, 22, 28, 40, ...), got {depth}.")
        stem, *stages = _scaled((16, 16 * widen, 32 * widen, 64 * widen), width)
        self.num_classes, self.in_chans = num_classes, in_chans
        self.stem = create_conv2d(in_chans, stem, 3)
        block = partial(PreActBasic, conv_layer=create_conv2d, norm_layer=BatchNormAct2d,
                        proj_layer=DownsampleConv)
        n, blocks, cin = (depth - 4) // 6, [], stem
        for i, c in enumerate(stages):
            for j in range(n):
                blocks.append(block(cin, c, stride=2 if (i > 0 and j == 0) else 1))
                cin = c
        self.stages = nn.Sequential(*blocks)
        self.norm = BatchNormAct2d(cin)
        self.num_features = cin
        self.head = ClassifierHead(cin, num_classes, drop_rate=drop_rate)
        self._init_convs()

    def forward_features(self, x):
        return self.norm(self.stages(self.stem(x)))


CIFAR_MODELS = ([f"resnet{d}" for d in (8, 14, 20, 32, 44, 56, 110)] + ["resnet8x4", "resnet32x4"]
                + [f"wrn_16_{k}" for k in (1, 2, 4, 8)] + ["wrn_40_1", "wrn_40_2"])
_mean, _std = MEAN_STD["cifar100"]
default_cfgs = generate_default_cfgs({  # read by register_model: must precede the entry points
    name: {"url": "", "num_classes": 100, "input_size": (3, 32, 32), "pool_size": None, "crop_pct": 1.0,
           "interpolation": "bilinear", "mean": _mean, "std": _std, "classifier": "head.fc",
           "first_conv": "stem" if name.startswith("wrn") else "stem.0"}
    for name in CIFAR_MODELS})


def _create(cls, variant: str, pretrained: bool, **kwargs):
    if pretrained:
        raise KDError("The CIFAR models of this repo have no pretrained weights; train a teacher instead.")
    return build_model_with_cfg(cls, variant, pretrained, **kwargs)


@register_model
def resnet8(pretrained=False, **kwargs) -> CifarResNet:
    return _create(CifarResNet, "resnet8", pretrained, depth=8, **kwargs)


@register_model
def resnet14(pretrained=False, **kwargs) -> CifarResNet:
    return _create(CifarResNet, "resnet14", pretrained, depth=14, **kwargs)


@register_model
def resnet20(pretrained=False, **kwargs) -> CifarResNet:
    return _create(CifarResNet, "resnet20", pretrained, depth=20, **kwargs)


@register_model
def resnet32(pretrained=False, **kwargs) -> CifarResNet:
    return _create(CifarResNet, "resnet32", pretrained, depth=32, **kwargs)


@register_model
def resnet44(pretrained=False, **kwargs) -> CifarResNet:
    return _create(CifarResNet, "resnet44", pretrained, depth=44, **kwargs)


@register_model
def resnet56(pretrained=False, **kwargs) -> CifarResNet:
    return _create(CifarResNet, "resnet56", pretrained, depth=56, **kwargs)


@register_model
def resnet110(pretrained=False, **kwargs) -> CifarResNet:
    return _create(CifarResNet, "resnet110", pretrained, depth=110, **kwargs)


@register_model
def resnet8x4(pretrained=False, **kwargs) -> CifarResNet:
    return _create(CifarResNet, "resnet8x4", pretrained, depth=8, channels=(32, 64, 128, 256), **kwargs)


@register_model
def resnet32x4(pretrained=False, **kwargs) -> CifarResNet:
    return _create(CifarResNet, "resnet32x4", pretrained, depth=32, channels=(32, 64, 128, 256), **kwargs)


# WRN-16-k of Cho & Hariharan's width ladder: k widens the stages only (the stem stays 16 channels), unlike
# wrn_16_2 with width=k/2, which scales the stem too (WRN-16-8: 10.96M against 11.02M with 10 classes).
@register_model
def wrn_16_1(pretrained=False, **kwargs) -> WideResNet:
    return _create(WideResNet, "wrn_16_1", pretrained, depth=16, widen=1, **kwargs)


@register_model
def wrn_16_2(pretrained=False, **kwargs) -> WideResNet:
    return _create(WideResNet, "wrn_16_2", pretrained, depth=16, widen=2, **kwargs)


@register_model
def wrn_16_4(pretrained=False, **kwargs) -> WideResNet:
    return _create(WideResNet, "wrn_16_4", pretrained, depth=16, widen=4, **kwargs)


@register_model
def wrn_16_8(pretrained=False, **kwargs) -> WideResNet:
    return _create(WideResNet, "wrn_16_8", pretrained, depth=16, widen=8, **kwargs)


@register_model
def wrn_40_1(pretrained=False, **kwargs) -> WideResNet:
    return _create(WideResNet, "wrn_40_1", pretrained, depth=40, widen=1, **kwargs)


@register_model
def wrn_40_2(pretrained=False, **kwargs) -> WideResNet:
    return _create(WideResNet, "wrn_40_2", pretrained, depth=40, widen=2, **kwargs)


def create_model(name: str, num_classes: int, in_chans: int, width: float = 1.0, **kwargs) -> nn.Module:
    """timm.create_model with a clear error for unknown names; `width` only for the CIFAR zoo."""
    if not timm.is_model(name):
        close = timm.list_models(f"*{name[:5]}*")[:8]
        raise KDError(f"Unknown model '{name}'. The CIFAR zoo of this repo is {', '.join(CIFAR_MODELS)}; any "
                      f"timm model name works too (e.g. resnet18, mobilenetv2_100)"
                      + (f"; names close to yours: {', '.join(close)}." if close else "."))
    if not 0 < width < float("inf"):
        raise KDError(f"Model width multiplier must be > 0, got {width}.")
    if name in CIFAR_MODELS:
        kwargs["width"] = width
    elif width != 1.0:
        raise KDError(f"The width multiplier applies to the CIFAR zoo only ({', '.join(CIFAR_MODELS)}), "
                      f"not to timm's '{name}'.")
    return timm.create_model(name, num_classes=num_classes, in_chans=in_chans, **kwargs)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def forward_mflops(model: nn.Module, in_chans: int, image_size) -> float:
    """Forward MFLOPs (multiply and add counted apart) of one image, by torch's FLOP counter: what a
    teacher or a student costs per sample, beside the wall time (a backward pass is about twice this)."""
    from torch.utils.flop_counter import FlopCounterMode
    was_training = model.training
    model.eval()
    x = torch.zeros(2, in_chans, *image_size, device=next(model.parameters()).device)
    with FlopCounterMode(display=False) as counter:
        model(x)
    model.train(was_training)
    return counter.get_total_flops() / 2 / 1e6


@torch.no_grad()
def blend_into(model: nn.Module, source: nn.Module, lam: float) -> nn.Module:
    """model <- lam * source + (1 - lam) * model, parameter by parameter and for the batch-norm statistics
    (Stanton et al. 2021, Sec. 6: a student initialised between a random init and its teacher); the two must
    be the same architecture. Integer buffers (batch counters) stay the model's."""
    if not 0 <= lam <= 1:
        raise KDError(f"The teacher-init weight lambda must be in [0, 1], got {lam}.")
    mine, theirs = model.state_dict(), source.state_dict()
    if mine.keys() != theirs.keys() or any(mine[k].shape != theirs[k].shape for k in mine):
        raise KDError("A student initialised from its teacher needs the teacher's architecture and width.")
    for k, v in mine.items():
        if v.is_floating_point():
            v.mul_(1 - lam).add_(theirs[k].to(v), alpha=lam)
    return model

