"""PyTorch ResNet-18 (CIFAR variant) with per-example statistics, for the side-by-side ratio.

The careful PyTorch version a researcher would write: data on the device, channels_last, bf16
autocast, cudnn.benchmark, SGD with Nesterov momentum, and per-example forgetting/correctness counters updated
by index on the device (no host sync per step). torch is not a dependency of regularity_jax;
this module imports it and is only used by `benchmarks.suite` case 7.
"""

from __future__ import annotations

import time

import torch
from torch import nn
import torch.nn.functional as F


class BasicBlock(nn.Module):

  def __init__(self, c_in, c_out, stride):
    super().__init__()
    self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(c_out)
    self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
    self.bn2 = nn.BatchNorm2d(c_out)
    self.shortcut = nn.Sequential()
    if stride != 1 or c_in != c_out:
      self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                    nn.BatchNorm2d(c_out))

  def forward(self, x):
    y = F.relu(self.bn1(self.conv1(x)))
    return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class ResNet18(nn.Module):

  def __init__(self, width=64, num_classes=10):
    super().__init__()
    self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width),
                              nn.ReLU())
    layers, c_in = [], width
    for i, stride in enumerate((1, 2, 2, 2)):
      c_out = width * 2 ** i
      layers += [BasicBlock(c_in, c_out, stride), BasicBlock(c_out, c_out, 1)]
      c_in = c_out
    self.layers = nn.Sequential(*layers)
    self.head = nn.Linear(c_in, num_classes)

  def forward(self, x):
    return self.head(torch.flatten(F.adaptive_avg_pool2d(self.layers(self.stem(x)), 1), 1))


def settings(*, bf16: bool) -> str:
  """The baseline's fixed settings, printed beside its number."""
  device = (f"cuda {torch.version.cuda}, {torch.cuda.get_device_name()}"
            if torch.cuda.is_available() else "cpu")
  return (f"torch {torch.__version__} ({device}); {'bf16 autocast' if bf16 else 'float32'}, "
          "channels_last, cudnn.benchmark, data on the device, SGD Nesterov, same ResNet-18 "
          "and batch")


def throughput(*, batch: int, n: int, width: int, steps: int, compiled: bool, bf16: bool) -> float:
  """Images per second of `steps` training steps (after warm-up)."""
  device = "cuda" if torch.cuda.is_available() else "cpu"
  torch.backends.cudnn.benchmark = True  # autotuned convolutions, as a careful baseline has
  model = ResNet18(width).to(device).to(memory_format=torch.channels_last)
  opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True,
                        weight_decay=5e-4)
  images = torch.randn(n, 3, 32, 32, device=device).to(memory_format=torch.channels_last)
  labels = torch.randint(0, 10, (n,), device=device)
  prev_correct = torch.zeros(n, dtype=torch.bool, device=device)
  forgetting = torch.zeros(n, dtype=torch.int32, device=device)
  cumulative = torch.zeros(n, dtype=torch.int32, device=device)

  def step(idx):
    x, y = images[idx], labels[idx]
    with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
      logits = model(x)
      loss = F.cross_entropy(logits.float(), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    correct = logits.argmax(1) == y
    forgetting.index_add_(0, idx, (prev_correct[idx] & ~correct).int())
    cumulative.index_add_(0, idx, correct.int())
    prev_correct.index_copy_(0, idx, correct)

  fn = torch.compile(step) if compiled else step
  perm = torch.randperm(n, device=device)
  batches = [perm[(i * batch) % (n - batch + 1):][:batch] for i in range(steps + 3)]
  for idx in batches[:3]:
    fn(idx)
  if device == "cuda":
    torch.cuda.synchronize()
  t0 = time.perf_counter()
  for idx in batches[3:]:
    fn(idx)
  if device == "cuda":
    torch.cuda.synchronize()
  return steps * batch / (time.perf_counter() - t0)
