r"""Toneva et al. 2019's CIFAR-10 protocol: ResNet-18 with crop + flip, 200 epochs.

  python -m experiments.main --config=experiments/configs/cifar10_resnet18.py \
      --config.data_dir=DIR --workdir=runs/cifar10_resnet18
  # CPU-sized check (< 2 minutes on 2 cores), on the JPEG q75 copy of CIFAR-10:
  python -m experiments.main --config=experiments/configs/cifar10_resnet18.py:smoke \
      --config.data_dir=../shared/data/cifar10_jpeg_q75 --workdir=runs/cifar10_smoke

Protocol (each setting, its value, and where it comes from; tests/test_protocols.py pins them):
  dataset          'cifar10'          the paper's CIFAR-10 experiments (all 50,000 examples)
  model            'resnet18'         run_cifar.py: Cutout's ResNet18 (the CIFAR variant: 3x3
                                      stem, no max-pool), github.com/mtoneva/example_forgetting
  model_kwargs.dropout  0.0           Cutout's ResNet18 has no dropout
  optimizer        'sgd'              run_cifar.py: torch.optim.SGD
  learning_rate    0.1                run_cifar.py --learning_rate default
  momentum         0.9                run_cifar.py: momentum=0.9
  nesterov         True               run_cifar.py: nesterov=True
  weight_decay     0.0005             run_cifar.py: weight_decay=5e-4 (coupled, PyTorch style)
  schedule         'multistep'        run_cifar.py: MultiStepLR
  lr_milestones    (60, 120, 160)     run_cifar.py: milestones=[60, 120, 160] (their loop calls
                                      scheduler.step(epoch) after each epoch, so there the drop
                                      lands one epoch later than here)
  lr_gamma         0.2                run_cifar.py: gamma=0.2
  batch_size       128                run_cifar.py --batch_size default
  num_epochs       200                run_cifar.py --epochs default
  augment          True               README: --data_augmentation (RandomCrop(32, padding=4),
                                      RandomHorizontalFlip)
  crop_padding     4                  run_cifar.py: RandomCrop(32, padding=4)
Project choices, not the paper's: dtype bfloat16 (compute; parameters stay float32),
eval_every 5, checkpoint_every 10. Statistics come from the train-mode forward pass of each
(augmented) step, as in run_cifar.py. Their README sums 5 seeds: pass --config.num_seeds=5.

DIR holds the CIFAR python archive, an image folder, or an npz; without data_dir the data load
through tensorflow-datasets. Expected (paper): 31.3% unforgettable summed over 5 seeds, about
95% test accuracy. On ../shared/data/cifar10_jpeg_q75 (lossy JPEG q75) expect accuracy a little
below the published figures, and report it as "CIFAR-10, JPEG q75". This full run needs an
accelerator (GPU/TPU); on 2 CPU cores only the smoke variant is sensible.
"""

from regularity_jax.training import default_config


def get_config(arg: str = ""):
  c = default_config()
  c.dataset = "cifar10"
  c.model = "resnet18"
  c.model_kwargs.dropout = 0.0
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
