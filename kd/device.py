"""Where models run: picking the device, its number format, and putting a model on it in a layout that is
both fast and safe.

Layout. channels_last pays on CPU as on GPU (benchmarks/cpu_layout.py, torch 2.14, 2-core EPYC: training
epochs 5-27% faster than NCHW, inference 1.5-2.7x), but oneDNN's CPU kernel for *strided 1x1*
convolutions in channels_last is broken on small channel counts: with AVX-512 the backward pass of a
stride-2 1x1 convolution with 3, 4, 8 or 12 input channels crashes (SIGSEGV, "double free") on every odd
batch size, and on other CPUs it has deadlocked on channel counts that are not multiples of 8. The
projection shortcut of every ResNet is such a convolution. So `place` keeps channels_last everywhere and
never hands oneDNN a strided 1x1 convolution on CPU: it subsamples the input (x[..., ::s, ::s], which is
exactly what a 1x1 kernel with stride s and no padding reads) and runs a unit-stride 1x1 convolution. The
weights, the state_dict and the numbers stay those of the same nn.Conv2d; the cost is 2-9% of a training
epoch against the unsafe kernel.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn as nn
import torch.nn.functional as F

from kd.errors import KDError


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks CUDA when present. The thread count is left as it is: torch's default (the cores) in a
    plain process, one in a sweep's run process (kd.isolation)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise KDError(f"Device '{name}' was asked for but no CUDA GPU is visible; use --device cpu.")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise KDError(f"Unknown device '{name}'; use auto, cpu or cuda[:N].")
    return torch.device(name)


def autocast(device: torch.device):
    """bf16 autocast on CUDA; fp32 on CPU (bf16 is slower than fp32 on most CPUs)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def eval_batch_size(device: torch.device) -> int:
    """Batch size of gradient-free passes (evaluation, teacher logits): as large as memory comfortably allows."""
    return 4096 if device.type == "cuda" else 1024


class SubsampledPointwiseConv(nn.Conv2d):
    """A 1x1, unpadded, strided nn.Conv2d computed as subsample + unit-stride 1x1 convolution (see above)."""

    def forward(self, x):
        sh, sw = self.stride
        return F.conv2d(x[:, :, ::sh, ::sw], self.weight, self.bias, 1, 0, 1, self.groups)


def _is_strided_pointwise(m: nn.Module) -> bool:
    return (type(m) is nn.Conv2d and m.kernel_size == (1, 1) and m.stride != (1, 1)
            and m.padding == (0, 0) and m.padding_mode == "zeros")


def place(model: nn.Module, device: torch.device) -> nn.Module:
    """The model on `device` in channels_last, with strided 1x1 convolutions made safe on CPU."""
    if torch.device(device).type == "cpu":
        for m in model.modules():
            if _is_strided_pointwise(m):
                m.__class__ = SubsampledPointwiseConv
    return model.to(device).to(memory_format=torch.channels_last)
