r"""Toneva et al. 2019's MNIST and permuted-MNIST tables at full scale (issue 30).

  # the report from the committed per-run results (trains nothing; seconds):
  python -m experiments.study --config=experiments/studies/toneva_tables/config.py \
      --config.train=False --workdir=experiments/results/toneva_tables
  # the ten runs, one at a time, in the background on this machine (see "How to run it here"):
  experiments/studies/toneva_tables/background.sh start COMMIT
  # smoke (600 train / 200 test examples, 3 epochs, seeds 0 and 1, both datasets; 4 runs):
  python -m experiments.study --config=experiments/studies/toneva_tables/config.py:smoke \
      --workdir=runs/toneva_tables_smoke

Ten independent single-seed runs: datasets mnist and permuted_mnist (MNIST with one fixed
permutation of its 784 pixels, from `permutation_seed`, applied to every train and test image:
`--config.permute_pixels`), seeds 0..4 (the run of seed s is replica k of a
`num_seeds=K, seed=s-k` run, `training.replicas`). Protocol of experiments/configs/
mnist_toneva.py: toneva_cnn without dropout, SGD lr 0.01 momentum 0.5, batch 64, 200 epochs,
all 60,000 training examples; forgetting is counted on presentations (the train-mode forward
pass of each step), so the runs evaluate only every 20 epochs, and checkpoint every 2 epochs
(a killed run loses at most 2 epochs and resumes bit-identically). The study's `measure`
combines the seeds by Toneva's rule (`metrics.seeds`) from the small per-run results that
`extract` writes to WORKDIR/runs/<dataset>_seed<k>/ (metrics.jsonl, config.json,
forgetting.npz, timing.json); the full run directories live in RUNS_DIR/runs/<name>
(`runs_dir`, default WORKDIR/training). With `train=False` it trains nothing and measures
the runs whose small results are present: the report says which are missing.

Fields: datasets, seeds, permutation_seed, mnist_dir (IDX files), train (False: measure the
committed results only), only (train just this run, e.g. 'mnist_seed0'; measure all present),
runs_dir, grid_k (examples per grid), base (the training config of every run).

How to run it here (2 shared CPU cores; the runs take 5-7 hours in all, measured 8-10 s per
epoch on a quiet machine, i.e. 30-45 minutes per run): at the beginning of each session,
  experiments/studies/toneva_tables/background.sh start COMMIT   # the commit to pin
(from the main checkout; COMMIT = the commit that started the series, recorded in
/work/toneva_pinned/COMMIT: pass the same one every session). It creates (once) the pinned
worktree /work/toneva_pinned at COMMIT with its own venv /work/toneva_pinned/.venv (a copy of
/work/venv311's packages with the pinned code installed), then runs the ten runs one at a time
under `nice -n 19` and nohup, skipping finished ones and resuming a killed one from its
checkpoints; it refuses to resume a run started by another commit. After each finished run it
copies the run's small results to experiments/results/toneva_tables/runs/<name>/ of the main
checkout and rewrites experiments/results/toneva_tables/report.md from them; it never commits:
commit them yourself (`git add experiments/results/toneva_tables`). Pause it while timing
something else, and resume it after:
  experiments/studies/toneva_tables/background.sh pause     # kill -STOP on its process group
  experiments/studies/toneva_tables/background.sh resume    # kill -CONT
  experiments/studies/toneva_tables/background.sh status    # pid, current run, log tail
Its pid is in /work/toneva_work/background.pid and its log in /work/toneva_work/background.log.

Hardware and runtime: 2 shared AMD EPYC CPU cores (jax 0.10.2, 2026-12-07). Smoke, measured:
34 s wall for its 4 runs at 1,000 examples on a quiet machine, 81 s wall (46 s CPU) at 600
examples with the load average at 5 (other work on the 2 cores); the background script ran the
smoke's 4 runs at nice 19 in about 3 minutes of that load, a killed run resumed to the same
per-example results as an uninterrupted one. Full: 10 x 200 epochs, 5-7 hours when quiet
(issue 30's 8-10 s per epoch), not measured yet.

Expected (paper, 5 seeds, summed): 91.7% of MNIST and 75.3% of permuted-MNIST training
examples unforgettable; test error 0.8% on MNIST. The report says for each dataset whether the
combined fraction is within 1 point, and gives issue 30's checklist for one that is not.
"""

import ml_collections

from regularity_jax.configs import mnist_toneva

DATASETS = ("mnist", "permuted_mnist")


def base_config():
  b = mnist_toneva.get_config()  # the protocol: toneva_cnn, no dropout, SGD 0.01/0.5, 64, 200
  b.data_dir = ""
  b.eval_every = 20        # forgetting is counted on presentations; evaluations only for error
  b.checkpoint_every = 2
  b.keep_checkpoints = 2
  b.progress_bar = False
  b.plots = False
  b.report = False
  b.num_devices = 1
  return b


def get_config(arg: str = ""):
  c = ml_collections.ConfigDict()
  c.study = "toneva_tables"
  c.datasets = DATASETS
  c.seeds = (0, 1, 2, 3, 4)
  c.permutation_seed = 0
  c.mnist_dir = "../shared/data/mnist"
  c.train = True
  c.only = ""
  c.runs_dir = ""
  c.grid_k = 8
  c.base = base_config()
  if arg == "smoke":
    c.seeds = (0, 1)
    c.base.train_subset, c.base.test_subset = 600, 200
    c.base.num_epochs = 3
    c.base.eval_every = 3
    c.base.checkpoint_every = 1
  elif arg:
    raise ValueError(f"unknown config argument {arg!r}; use '' or 'smoke'")
  return c
