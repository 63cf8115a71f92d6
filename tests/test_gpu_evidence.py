"""benchmarks.gpu_evidence: the merged RESULTS.md, rows kept from a timed-out part, targets."""

import json

from benchmarks import gpu_evidence

TABLE = """# Benchmarks (h100 preset)

| case | variant | batch | img_per_s | ratio |
|---|---|---|---|---|
| 1 resnet_step | bare | 128 | 20000 |  |
| 1 resnet_step | tracked | 128 | 19800 | tracked/bare time 1.010 |
| 3 grand | vmap(grad), chunks of 256 | 50000 | 9000 | 5.20 training epochs |
"""


def _part(directory, name, rc, md=None, log=""):
  (directory / f"{name}.status").write_text(json.dumps(
      {"rc": rc, "seconds": 100, "limit": 150, "call": 1}))
  (directory / f"{name}.log").write_text(log)
  if md is not None:
    (directory / f"{name}.md").write_text(md)


def test_merge_keeps_timed_out_rows_and_judges_targets(tmp_path):
  (tmp_path / "env.json").write_text(json.dumps({"device": "NVIDIA H100 80GB HBM3 x1 (gpu)",
                                                 "versions": {"jax": "0.11.2"}, "smoke": False}))
  _part(tmp_path, "suite_1_3_4", 0, md=TABLE)
  _part(tmp_path, "suite_7", 124, log=(
      "7 torch settings: torch 2.11.0 (cuda 13.0, H100); bf16 autocast, channels_last\n"
      "case=7 torch | variant=ResNet-18 eager + per-example stats (bf16 autocast) | batch=128 | "
      "img_per_s=8800 | ratio=\nsome XLA noise\n"))
  text = gpu_evidence.merge(tmp_path, tmp_path / "RESULTS.md")
  assert "| 1 resnet_step | tracked | 128 | 19800 | tracked/bare time 1.010 |" in text
  assert "ResNet-18 eager + per-example stats (bf16 autocast) (part timed out)" in text
  assert "suite_7: timed out after 100 s (limit 150 s); 1 rows" in text
  assert "suite_2: not run yet (left for a rerun)" in text
  assert "| tracking overhead <= 2% (batch 128) | tracked/bare 1.010 | met |" in text
  assert "| GraNd over the training set <= 4 epochs | 5.20 epochs | MISSED" in text
  assert "2.25x (19800 vs 8800 img/s, ResNet-18 eager) | met |" in text
  assert (tmp_path / "RESULTS.md").read_text() == text


def test_toneva_summary_per_seed_and_labelled(tmp_path):
  run = tmp_path / "run"
  run.mkdir()
  (run / "config.json").write_text(json.dumps({
      "num_seeds": 2, "num_epochs": 200, "max_wall_time_s": 180.0, "batch_size": 128,
      "dtype": "bfloat16", "train_subset": 0, "test_subset": 0}))
  (run / "wall_time.json").write_text(json.dumps({"seconds": 179.0, "invocations": 1}))
  records = [{"epoch": e, "train_time_s": t, "eval_time_s": 1.0, "test_accuracy": 0.5,
              "test_accuracy_per_seed": [0.4, 0.6], "train_unforgettable_fraction": 0.1,
              "train_unforgettable_fraction_per_seed": [0.2, 0.3]}
             for e, t in ((1, 40.0), (2, 5.0), (3, 6.0))]
  (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
  text = gpu_evidence.toneva(tmp_path, run)
  assert "JPEG q75" in text and "PARTIAL" in text and "NOT comparable" in text
  assert "3 of 200 epochs" in text
  assert "| 2 | 5.00 | 1.00 | 0.4000 / 0.6000 | 0.2000 / 0.3000 | 0.1000 |" in text
  assert "median): 6.00 s" in text
  assert (tmp_path / "toneva_cifar10" / "metrics.jsonl").is_file()
