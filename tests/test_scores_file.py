"""scores.npz provenance: another run's scores are used only on the examples they measured."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from regularity_jax.runs import ScoresFileError
from regularity_jax.runs import scores_file
from regularity_jax.training import train_and_evaluate
from tests import engine_fixtures

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def dirs(tmp_path_factory):
  root = tmp_path_factory.mktemp("provenance")
  engine_fixtures.write_tiny_npz(root / "a")
  # Another dataset of the same shape and classes, under another name.
  engine_fixtures.write_tiny_npz(root / "b", seed=1).rename(root / "b" / "other.npz")
  return root


@pytest.fixture(scope="session")
def scored(dirs, tmp_path_factory):
  """A finished 2-epoch run on dataset a: its scores.npz prunes the runs below."""
  workdir = tmp_path_factory.mktemp("runs") / "scoring"
  train_and_evaluate(engine_fixtures.tiny_config(dirs / "a", num_epochs=2), workdir)
  return workdir / "scores.npz"


def _pruned(data_dir, scores, **overrides):
  return engine_fixtures.tiny_config(data_dir, num_epochs=1, **{
      "pruning.fraction_kept": 0.5, "pruning.scores_path": str(scores), **overrides})


def _rewrite(src, dst, change):
  """A copy of a scores.npz with `change(arrays, provenance)` applied."""
  with np.load(src) as z:
    arrays = {k: z[k] for k in z.files}
  prov = json.loads(str(arrays.pop("provenance")))
  change(arrays, prov)
  if prov is not None:
    scores_file.write(dst, arrays, prov)
  return dst


class TestProvenanceRecorded:

  @pytest.mark.slow
  def test_keys(self, scored, dirs):
    loaded = scores_file.load(scored)
    prov = loaded.provenance
    assert prov["dataset"] == "tiny" and prov["numbering"] == "local"
    assert prov["source"] == f"local:{(dirs / 'a' / 'tiny.npz').resolve()}"
    assert prov["splits"]["train"] == {
        "full_size": 96, "scored": 96,
        "fingerprint": scores_file.fingerprint(np.arange(96), np.arange(96) % 4)}
    assert prov["seeds"] == [0] and prov["num_epochs"] == 2
    assert prov["corruption"] == {"kind": "none", "fraction": 0.0, "seed": 0}
    assert prov["permute_pixels"] is None
    # The Toneva-rule column sits next to the summed event count.
    assert "train/forgetting_score" in loaded and "test/forgetting_score" in loaded


class TestChecked:

  @pytest.mark.slow
  def test_same_data_prunes(self, dirs, scored, tmp_path):
    result = train_and_evaluate(_pruned(dirs / "a", scored), tmp_path / "ok")
    assert result.scores["train/active"].sum() == 48

  @pytest.mark.slow
  def test_a_subset_may_use_the_full_runs_scores(self, dirs, scored, tmp_path):
    result = train_and_evaluate(_pruned(dirs / "a", scored, train_subset=40), tmp_path / "sub")
    assert result.scores["train/active"].sum() == 20

  def test_other_dataset_name_refused_before_the_workdir_exists(self, dirs, scored, tmp_path):
    config = _pruned(dirs / "b", scored)
    with pytest.raises(ScoresFileError, match="scores dataset 'tiny'.*trains other"):
      train_and_evaluate(config, tmp_path / "w")
    assert not (tmp_path / "w").exists()

  def test_other_labels_refused(self, dirs, scored, tmp_path):
    other = _rewrite(scored, tmp_path / "labels.npz", lambda a, p: a.update(
        {"train/original_label": (a["train/original_label"] + 1) % 4}))
    with pytest.raises(ScoresFileError, match="96 of 96 shared ids have other labels"):
      train_and_evaluate(_pruned(dirs / "a", other), tmp_path / "w")

  def test_other_numbering_refused(self, dirs, scored, tmp_path):
    tfds = _rewrite(scored, tmp_path / "tfds.npz",
                    lambda a, p: p.update(numbering="tfds", source="tfds:mnist"))
    with pytest.raises(ScoresFileError, match="numbers its examples by tfds.*local"):
      train_and_evaluate(_pruned(dirs / "a", tfds), tmp_path / "w")

  def test_permuted_pixels_refused_both_ways(self, dirs, scored, tmp_path):
    # A permuted run's scores on the unpermuted data (same ids, same labels): refused.
    permuted = _rewrite(scored, tmp_path / "perm.npz", lambda a, p: p.update(
        permute_pixels={"seed": 0, "sha256": "3aa79b80c498bc4e"}))
    with pytest.raises(ScoresFileError, match=r"with pixels permuted \(seed 0, sha256 3aa79b80c498\)"
                       ".*with unpermuted pixels.*--config.permute_pixels"):
      train_and_evaluate(_pruned(dirs / "a", permuted), tmp_path / "w")
    # The unpermuted run's scores on permuted data: refused.
    with pytest.raises(ScoresFileError, match="with unpermuted pixels.*with pixels permuted"):
      train_and_evaluate(_pruned(dirs / "a", scored, **{"permute_pixels.enabled": True}),
                         tmp_path / "w2")
    assert not (tmp_path / "w").exists() and not (tmp_path / "w2").exists()

  @pytest.mark.slow
  def test_same_permutation_accepted_other_seed_refused(self, dirs, tmp_path):
    workdir = tmp_path / "perm_run"
    train_and_evaluate(engine_fixtures.tiny_config(
        dirs / "a", num_epochs=1, **{"permute_pixels.enabled": True,
                                     "permute_pixels.seed": 3}), workdir)
    prov = scores_file.load(workdir / "scores.npz").provenance
    assert prov["permute_pixels"]["seed"] == 3 and len(prov["permute_pixels"]["sha256"]) == 64
    result = train_and_evaluate(_pruned(dirs / "a", workdir / "scores.npz", **{
        "permute_pixels.enabled": True, "permute_pixels.seed": 3}), tmp_path / "ok")
    assert result.scores["train/active"].sum() == 48
    with pytest.raises(ScoresFileError, match="seed 3.*seed 4"):
      train_and_evaluate(_pruned(dirs / "a", workdir / "scores.npz", **{
          "permute_pixels.enabled": True, "permute_pixels.seed": 4}), tmp_path / "w")

  def test_other_split_size_refused(self, dirs, scored, tmp_path):
    bigger = _rewrite(scored, tmp_path / "big.npz",
                      lambda a, p: p["splits"]["train"].update(full_size=60000))
    with pytest.raises(ScoresFileError, match="60000 examples"):
      train_and_evaluate(_pruned(dirs / "a", bigger), tmp_path / "w")

  @pytest.mark.slow
  def test_partial_coverage_refused_unless_allowed(self, dirs, tmp_path):
    subset_run = tmp_path / "subset_run"
    train_and_evaluate(engine_fixtures.tiny_config(dirs / "a", num_epochs=1, train_subset=40),
                       subset_run)
    partial = subset_run / "scores.npz"
    with pytest.raises(ScoresFileError, match="scores 40 of this run's 96 training examples "
                       r"\(56 ids absent.*pruning.allow_partial=True"):
      train_and_evaluate(_pruned(dirs / "a", partial), tmp_path / "w")
    result = train_and_evaluate(_pruned(dirs / "a", partial, **{"pruning.allow_partial": True}),
                                tmp_path / "allowed")
    kept = result.scores["train/active"]
    scored_ids = set(scores_file.load(partial)["train/example_id"].tolist())
    # 48 kept: all 40 scored examples first, then 8 unscored ones.
    assert kept.sum() == 48
    assert scored_ids <= set(np.flatnonzero(kept).tolist())

  def test_no_provenance_refused_with_the_fix(self, dirs, scored, tmp_path):
    with np.load(scored) as z:
      old = {k: z[k] for k in z.files if k != "provenance"}
    np.savez(tmp_path / "old.npz", **old)
    with pytest.raises(ScoresFileError, match="has no provenance.*rerun the scoring run"):
      train_and_evaluate(_pruned(dirs / "a", tmp_path / "old.npz"), tmp_path / "w")

  @pytest.mark.parametrize("content", [b"", b"not a zip at all", None])
  def test_unreadable_files(self, dirs, scored, tmp_path, content):
    path = tmp_path / "bad.npz"
    path.write_bytes(scored.read_bytes()[:200] if content is None else content)
    with pytest.raises(ScoresFileError, match="not a readable .npz"):
      train_and_evaluate(_pruned(dirs / "a", path), tmp_path / "w")

  def test_weighting_checks_too(self, dirs, scored, tmp_path):
    config = engine_fixtures.tiny_config(dirs / "b", num_epochs=1, **{
        "weighting.scheme": "hard_first", "weighting.scores_path": str(scored)})
    with pytest.raises(ScoresFileError, match="weighting.scores_path.*scores dataset 'tiny'"):
      train_and_evaluate(config, tmp_path / "w")


@pytest.mark.slow
def test_cli_other_dataset_one_line_exit_2(scored, tmp_path):
  """A tiny run's scores cannot prune an MNIST-1D run: one line, exit 2, no workdir."""
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  out = subprocess.run(
      [sys.executable, "-m", "experiments.main", "--config=experiments/configs/quickstart.py",
       "--config.pruning.fraction_kept=0.5", f"--config.pruning.scores_path={scored}",
       f"--workdir={tmp_path / 'w'}"], cwd=REPO, env=env, capture_output=True, text=True,
      timeout=300)
  assert out.returncode == 2, out.stderr[-2000:]
  assert "Traceback" not in out.stderr
  last = out.stderr.strip().splitlines()[-1]
  assert last.startswith("error: pruning.scores_path") and "'tiny'" in last and "mnist1d" in last
  assert not (tmp_path / "w").exists()
