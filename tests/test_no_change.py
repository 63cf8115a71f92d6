"""benchmarks/no_change.py: the comparison itself (bits, dtypes, names, timing keys, issue 30's
additions) and the matrix's coverage; its runs are the benchmark's (benchmarks/
RESULTS_no_change_cpu.md)."""

import json
import pathlib

import numpy as np

from benchmarks import no_change

REPO = pathlib.Path(__file__).resolve().parents[1]


def write(folder, scores, records):
  folder.mkdir(parents=True)
  np.savez(folder / "scores.npz", **scores)
  (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
  return folder


def test_compare_bits_dtypes_names_and_timing(tmp_path):
  base = {"train/aum": np.float32([0.5, -0.0]), "provenance": np.array(json.dumps({"a": 1}))}
  record = {"epoch": 1, "train_loss": 0.25, "train_time_s": 3.0,
            "test_margin": float("nan")}  # NaN equals NaN here
  a = write(tmp_path / "base" / "r", base, [record])
  same = write(tmp_path / "same" / "r", base, [{**record, "train_time_s": 9.0}])
  assert no_change.compare_run(a, same) == (
      "scores.npz 2 columns, metrics.jsonl 1 records: identical", False)
  for name, scores, records, expected in [
      ("zero", {**base, "train/aum": np.float32([0.5, 0.0])}, [record], "train/aum: bits differ"),
      ("dtype", {**base, "train/aum": np.float64([0.5, -0.0])}, [record], "float32[2] vs float64"),
      ("name", {**base, "train/new": np.int32([1])}, [record], "only in head: train/new"),
      ("loss", base, [{**record, "train_loss": 0.5}], "record 0: train_loss")]:
    line, differs = no_change.compare_run(a, write(tmp_path / name / "r", scores, records))
    assert differs and expected in line, line


def test_issue_30_additions_listed_unless_strict(tmp_path):
  base = {"train/aum": np.float32([1.0]), "provenance": np.array(json.dumps({"a": 1}))}
  head = {**base, "train/first_forgotten": np.int32([-1]),
          "provenance": np.array(json.dumps({"a": 1, "permute_pixels": None}))}
  a = write(tmp_path / "a", base, [{"epoch": 1}])
  b = write(tmp_path / "b", head, [{"epoch": 1}])
  line, differs = no_change.compare_run(a, b)
  assert not differs and "identical (head adds 2: first_forgotten, provenance.permute_pixels)" in line
  assert no_change.compare_run(a, b, strict=True)[1]
  on = write(tmp_path / "c", {**head, "provenance": np.array(json.dumps(
      {"a": 1, "permute_pixels": {"seed": 0}}))}, [{"epoch": 1}])
  assert no_change.compare_run(a, on) == (
      "scores.npz 2 columns, metrics.jsonl 1 records: DIFFERENT: provenance: values differ", True)


def test_refusals_compare_their_line(tmp_path):
  for side, text in (("a", "ConfigError: x"), ("b", "ConfigError: x"), ("c", "ConfigError: y")):
    (tmp_path / f"{side}.error").write_text(text)
  assert no_change.compare_run(tmp_path / "a", tmp_path / "b")[1] is False
  assert no_change.compare_run(tmp_path / "a", tmp_path / "c")[1] is True


def test_the_matrix_covers_every_config_study_feature_and_axis():
  runs = no_change.all_runs()
  configs = {p.stem for p in (REPO / "experiments" / "configs").glob("[!_]*.py")}
  studies = {p.parent.name for p in (REPO / "experiments" / "studies").glob("*/config.py")}
  assert {n.split("/")[1] for n in runs if n.startswith("smoke/")} == configs
  assert {n.split("/")[1] for n in runs if n.startswith("study/")} == studies
  grouped = [f for name, group in no_change.GROUPS.items() for f in group
             if name not in no_change.GROUP_SEEDS]
  assert sorted(grouped) == sorted(no_change.FEATURES)
  from regularity_jax.training.features import prioritization  # pylint: disable=g-import-not-at-top
  methods = {v["prioritization"] for v in no_change.FEATURES.values() if "prioritization" in v}
  assert methods | {"uniform"} == set(prioritization.METHODS)
  matrix = [n for n in runs if n.startswith("matrix/")]
  assert len(matrix) == sum(2 * len(no_change.GROUP_SEEDS.get(g, (1, 2))) * 2
                            for g in no_change.GROUPS)
  assert any(n.endswith("-s2-d4") and "turnover" in n for n in matrix)
  assert no_change._smoke_flags(REPO / "experiments/configs/noise_prioritization.py") == [
      "--config.data_dir=../shared/data/mnist", "--config.prioritization=infobatch"]
