r"""Toneva et al. 2019's CIFAR-10 protocol: ResNet-18 with crop + flip, 200 epochs.

  python -m experiments.main --config=experiments/configs/cifar10_resnet18.py \
      --config.data_dir=DIR --workdir=runs/cifar10_resnet18
  # CPU-sized check (< 2 minutes on 2 cores), on the JPEG q75 copy of CIFAR-10:
  python -m experiments.main --config=experiments/configs/cifar10_resnet18.py:smoke \
      --config.data_dir=../shared/data/cifar10_jpeg_q75 --workdir=runs/cifar10_smoke

Setup (SPEC.md): ResNet-18 (CIFAR variant), SGD lr 0.1 momentum 0.9 Nesterov, weight decay
5e-4, lr x0.2 at epochs 60/120/160, batch 128, 200 epochs, random crop (4 px) + flip, bf16
compute. DIR holds the CIFAR python archive, an image folder, or an npz; without data_dir the
data load through tensorflow-datasets. Expected (paper): 31.3% unforgettable summed over 5
seeds, about 95% test accuracy. On ../shared/data/cifar10_jpeg_q75 (lossy JPEG q75) expect
accuracy a little below the published figures, and report it as "CIFAR-10, JPEG q75".
This full run needs an accelerator (GPU/TPU); on 2 CPU cores only the smoke variant is sensible.
"""

from regularity_jax.training import default_config


def get_config(arg: str = ""):
  c = default_config()
  c.dataset = "cifar10"
  c.model = "resnet18"
  c.dtype = "bfloat16"
  c.num_epochs = 200
  c.batch_size = 128
  c.eval_batch_size = 1000
  c.optimizer = "sgd"
  c.learning_rate = 0.1
  c.momentum = 0.9
  c.nesterov = True
  c.weight_decay = 5e-4
  c.schedule = "multistep"
  c.lr_milestones = (60, 120, 160)
  c.lr_gamma = 0.2
  c.augment = True
  c.crop_padding = 4
  c.eval_every = 5
  c.checkpoint_every = 10
  if arg == "smoke":
    c.train_subset, c.test_subset = 512, 256
    c.dtype = "float32"  # bf16 convolutions are slow on CPUs
    c.model_kwargs.width = 16
    c.batch_size, c.eval_batch_size = 64, 256
    c.num_epochs = 2
    c.eval_every = 1
    c.checkpoint_every = 2
    c.lr_milestones = (1,)
  elif arg:
    raise ValueError(f"unknown config argument {arg!r}; use '' or 'smoke'")
  return c
