"""The peer-style input pipeline the benchmarks compare against: the common CIFAR KD codebases' dataset,
one PIL image per item, RandomCrop with padding + horizontal flip + normalise in DataLoader workers."""
from __future__ import annotations

import torch
import torchvision.transforms as T
from PIL import Image


class PilDataset(torch.utils.data.Dataset):
    """The pool's training images of a TensorData (same crop padding and mean/std), served as PIL does."""

    def __init__(self, data, pool: torch.Tensor):
        idx, pad = pool.to(data.device), data.pad
        self.images = data.train_padded[idx, pad:-pad, pad:-pad].cpu()  # NHWC uint8, padding removed
        self.labels = data.train_y[idx].cpu()
        self.transform = T.Compose([T.RandomCrop(data.image_size[0], padding=pad), T.RandomHorizontalFlip(),
                                    T.ToTensor(), T.Normalize(data.mean.tolist(), data.std.tolist())])

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        img = self.images[i].numpy()
        img = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img)
        return self.transform(img), int(self.labels[i])
