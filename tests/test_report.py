"""The run report: its grids against a slow reference, the page's content, the command, size.

The browser (headless Chromium) opens reports in tests/test_report_browser.py.
"""

import json
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest

from regularity_jax import data
from regularity_jax import report
from regularity_jax.metrics import difficulty
from regularity_jax.report import selection
from regularity_jax.runs import scores_file
from regularity_jax.training import default_config
from regularity_jax.training import train_and_evaluate
from tests import engine_fixtures
from tests import report_checks

REPO = pathlib.Path(__file__).resolve().parents[1]


def _table(n=240, num_classes=3, seeds=0, seed=0):
  """A scores.npz-like table with many ties and some unobserved (NaN) examples."""
  rng = np.random.default_rng(seed)
  t = {"train/example_id": rng.permutation(5 * n)[:n].astype(np.int32),
       "train/label": (np.arange(n) % num_classes).astype(np.int32),
       "test/example_id": np.arange(n // 2, dtype=np.int32),
       "test/label": (np.arange(n // 2) % num_classes).astype(np.int32)}

  def stats(prefix, m):
    observations = rng.integers(0, 4, m)
    t[prefix + "observations"] = observations
    t[prefix + "forgetting_events"] = rng.integers(0, 3, m)  # few values: ties
    t[prefix + "never_learned"] = rng.random(m) < 0.1
    correct = rng.integers(0, 4, m) / 4.0
    t[prefix + "mean_correct"] = np.where(observations > 0, correct, np.nan).astype(np.float32)
    t[prefix + "aum"] = np.round(rng.normal(size=m), 1).astype(np.float32)
    t[prefix + "confidence"] = rng.random(m).astype(np.float32)
    t[prefix + "variability"] = (0.3 * rng.random(m)).astype(np.float32)

  for split, m in (("train", n), ("test", n // 2)):
    if seeds:
      for k in range(seeds):
        stats(f"{split}/seed{k}/", m)
    else:
      stats(f"{split}/", m)
  return t


class TestSelection:

  @pytest.mark.parametrize("seeds", [0, 3])
  @pytest.mark.parametrize("k", [1, 5, 16])
  def test_grids_equal_the_slow_reference(self, seeds, k):
    t = _table(seeds=seeds)
    got = {}
    for split in ("train", "test"):
      for g in selection.score_grids(t, split, selection.available_scores(t, split), k=k):
        got[g.key] = t[f"{split}/example_id"][g.rows].tolist()
        np.testing.assert_array_equal(g.values, difficulty.from_scores(g.score, t)[g.rows])
    assert got == report_checks.expected_grids(t, k=k)

  def test_available_scores_are_the_computable_ones(self):
    t = _table()
    assert selection.available_scores(t, "train") == ["forgetting", "cbtl", "aum", "confidence",
                                                      "variability"]
    assert selection.available_scores(t, "test") == ["cbgl", "malgeneralizing"]
    t["train/mean_el2n"] = np.full(240, np.nan, np.float32)  # tracked by nobody: left out
    assert "el2n" not in selection.available_scores(t, "train")

  def test_ties_are_broken_by_the_seed_not_by_position(self):
    t = {"train/example_id": np.arange(100, dtype=np.int32),
         "train/label": np.zeros(100, np.int32), "train/observations": np.ones(100, np.int32),
         "train/forgetting_events": np.zeros(100, np.int32),
         "train/never_learned": np.zeros(100, bool)}
    a = selection.score_grids(t, "train", ["forgetting"], k=8, seed=0)[1].rows
    b = selection.score_grids(t, "train", ["forgetting"], k=8, seed=1)[1].rows
    assert a.tolist() != list(range(8)) and a.tolist() != b.tolist()

  def test_data_map_regions(self):
    t = _table()
    regions = {g.end: g for g in selection.data_map_grids(t, k=7)}
    assert list(regions) == list(selection.REGIONS)
    var, conf = t["train/variability"], t["train/confidence"]
    assert var[regions["ambiguous"].rows].min() >= np.sort(var)[-7]
    assert conf[regions["easy-to-learn"].rows].min() >= np.sort(conf)[-7]
    assert conf[regions["hard-to-learn"].rows].max() <= np.sort(conf)[6]
    assert selection.data_map_grids({"train/label": t["train/label"]}) == []


def _run(tmp_path, **overrides):
  engine_fixtures.write_tiny_npz(tmp_path / "data")
  config = engine_fixtures.tiny_config(tmp_path / "data",
                                       **{"report": True, "plots": True, **overrides})
  return train_and_evaluate(config, tmp_path / "run")


class TestReportOfARun:

  @pytest.mark.slow
  def test_images_grids_pngs_and_captions(self, tmp_path):
    result = _run(tmp_path, **{"corruption.kind": "symmetric", "corruption.fraction": 0.25,
                               "report_k": 5})
    parser = report_checks.check_report(result.workdir, k=5)
    assert len(parser.grids) >= 2 * 4 * 5  # two ends x 4 classes x the presentation scores
    text = (result.workdir / "report.html").read_text()
    # corrupted examples: a red frame and the original label
    assert text.count('class="th bad"') > 0 and '<span class="was">was ' in text
    assert "data:image/png;base64," in text  # the sprite sheet and the plots
    assert text.count("url(data:image/png") == 2  # one sprite sheet per split, each once
    grids = sorted(p.name for p in (result.workdir / "plots" / "grids").iterdir())
    assert "train_forgetting.png" in grids and "test_cbgl.png" in grids
    for name in grids:
      assert (result.workdir / "plots" / "grids" / name).read_bytes()[:4] == b"\x89PNG"

  @pytest.mark.slow
  def test_turnover_scores_have_grids(self, tmp_path):
    result = _run(tmp_path, **{"num_epochs": 2, "turnover.enabled": True, "report_k": 4,
                               "plots": False})
    parser = report_checks.check_report(result.workdir, k=4)
    scores = {key.split("/")[1] for key in parser.grids if key.startswith("train/")}
    assert {"memorization", "memorization_loss", "generalization_error"} <= scores
    assert "No plots: the run was made with --config.plots=False." in (
        result.workdir / "report.html").read_text()

  @pytest.mark.slow
  def test_command_rewrites_any_run_and_refuses_a_non_run(self, tmp_path):
    result = _run(tmp_path, report=False)
    assert not (result.workdir / "report.html").exists()
    out = subprocess.run([sys.executable, "-m", "experiments.report",
                          f"--workdir={result.workdir}", "--k=3"], cwd=REPO,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == f"report: {result.workdir / 'report.html'}"
    report_checks.check_report(result.workdir, k=3)
    (tmp_path / "empty").mkdir()
    out = subprocess.run([sys.executable, "-m", "experiments.report",
                          f"--workdir={tmp_path / 'empty'}"], cwd=REPO,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'empty'} has no config.json, so it is not a finished "
        "regularity_jax run; pass the --workdir of a run that has finished (or rerun it to "
        "finish)"]

  @pytest.mark.slow
  def test_data_that_do_not_match_are_refused(self, tmp_path):
    result = _run(tmp_path, report=False)
    engine_fixtures.write_tiny_npz(tmp_path / "data", n_train=64)  # the run's file, replaced
    with pytest.raises(report.ReportError, match="changed since it was trained on .*: train "
                       "examples 96 -> 64.*no report was written"):
      report.write(result.workdir)
    assert not (result.workdir / "report.html").exists()

  @pytest.mark.slow
  def test_one_dimensional_data_are_line_plots(self, tmp_path):
    c = default_config()
    c.update_from_flattened_dict({
        "dataset": "mnist1d", "model": "mlp", "num_epochs": 2, "train_subset": 300,
        "test_subset": 100, "batch_size": 50, "eval_batch_size": 100, "progress_bar": False,
        "plots": False, "report_k": 4})
    c.model_kwargs.hidden = (32,)
    result = train_and_evaluate(c, tmp_path / "run")
    report_checks.check_report(result.workdir, k=4)
    text = (result.workdir / "report.html").read_text()
    assert "<symbol id=\"x-train-" in text and "<polyline" in text
    assert "url(data:image" not in text  # no sprite sheet for 1-D data
    # each shown example has one symbol, used wherever it appears
    parser = report_checks.parse(result.workdir / "report.html")
    shown = {i for key, ids in parser.grids.items() if key.startswith("train/") for i in ids}
    assert text.count('<symbol id="x-train-') == len(shown)
    assert (result.workdir / "plots" / "grids" / "train_forgetting.png").is_file()


@pytest.mark.slow
def test_page_of_a_cifar10_sized_run_is_small(tmp_path):
  """50,000 color examples, every presentation score plus turn-over's: at most 5 MB."""
  rng = np.random.default_rng(0)
  n, m = 50_000, 10_000
  # Smooth images with texture (JPEG sizes like CIFAR's): upsampled 8x8 noise plus noise.
  coarse = rng.random((n, 8, 8, 3), np.float32)
  images = np.repeat(np.repeat(coarse, 4, axis=1), 4, axis=2)
  images += 0.08 * rng.standard_normal(images.shape, np.float32)
  labels = rng.integers(0, 10, n).astype(np.int32)
  train = data.Split.clean(images, labels)
  test = data.Split.clean(images[:m], labels[:m])
  dataset = data.Dataset("cifar10", train, test, 10, tuple(f"c{i}" for i in range(10)),
                         "local:/synthetic", full_sizes=(n, m))
  scores = {"train/example_id": train.ids, "train/label": labels,
            "test/example_id": test.ids, "test/label": test.labels}
  for split, size in (("train", n), ("test", m)):
    scores[f"{split}/observations"] = np.full(size, 30)
    scores[f"{split}/forgetting_events"] = rng.integers(0, 6, size)
    scores[f"{split}/never_learned"] = rng.random(size) < 0.02
    for key in ("mean_correct", "aum", "mean_el2n", "mean_loss", "confidence", "variability",
                "memorization", "generalization_error", "normalized_margin"):
      scores[f"{split}/{key}"] = rng.random(size).astype(np.float32)
  workdir = tmp_path / "run"
  workdir.mkdir()
  config = default_config()
  config.dataset = "cifar10"
  (workdir / "config.json").write_text(json.dumps(config.to_dict()))
  scores_file.write(workdir / "scores.npz", scores, {"format": scores_file.FORMAT,
                                                     "dataset": "cifar10", "seeds": [0]})
  t0 = time.perf_counter()
  path = report.write(workdir, dataset=dataset)
  seconds = time.perf_counter() - t0
  size = path.stat().st_size
  parser = report_checks.parse(path)
  print(f"\n50,000-example page: {size / 1e6:.2f} MB, {len(parser.grids)} grids, "
        f"{seconds:.1f} s (PNG grids included)")
  assert len(parser.grids) == 10 * 2 * 10 + 3 + 10 * 2 * 2  # 10 train scores, data map, test
  assert size <= 5_000_000


class TestScoreFigure:
  """report/figures.py on hand-made grids: each shown example's tile is where the layout puts
  it, with its pixels (a slow reference: the tile cut out of the PNG, pixel by pixel)."""

  def test_each_tile_is_its_example_upscaled_at_its_place(self, tmp_path):
    from PIL import Image
    from regularity_jax.report import figures
    rng = np.random.default_rng(0)
    examples = rng.uniform(size=(6, 4, 4, 1)).astype(np.float32)  # 4x4 -> 14x scale
    index_of = {10 + i: i for i in range(6)}  # split row -> examples index
    grids = [selection.Grid("train", "el2n", label, end, np.array(rows), np.zeros(len(rows)))
             for label, end, rows in [(0, "hardest", [10, 11]), (0, "easiest", [12]),
                                      (2, "hardest", [13, 14]), (2, "easiest", [15, 10])]]
    path = figures.score_figure(grids, examples, index_of, ["zero", "one", "two"],
                                tmp_path / "el2n.png", k=2, title="EL2N")
    canvas = np.asarray(Image.open(path).convert("RGB"))
    scale = figures.CELL_PX // 4
    tw = th = 4 * scale
    half, gap = 2 * (tw + figures.PAD), 3 * tw // 2
    assert canvas.shape == (figures.TOP + 2 * (th + figures.PAD), figures.LEFT + 2 * half + gap, 3)
    from regularity_jax.report import thumbnails
    pixels = thumbnails.to_uint8(examples)
    for r, label in enumerate((0, 2)):
      for g in (g for g in grids if g.label == label):
        j = selection.ENDS.index(g.end)
        for c, row in enumerate(g.rows):
          x = figures.LEFT + j * (half + gap) + c * (tw + figures.PAD)
          y = figures.TOP + r * (th + figures.PAD)
          want = np.repeat(np.repeat(pixels[index_of[int(row)], ..., 0], scale, 0), scale, 1)
          got = canvas[y:y + th, x:x + tw]
          for channel in range(3):
            np.testing.assert_array_equal(got[..., channel], want, err_msg=f"{g.key} {c}")

  def test_one_dimensional_and_text_examples_get_their_tiles(self, tmp_path):
    from regularity_jax.report import figures
    series = np.sin(np.linspace(0, 6, 40)).reshape(1, 40, 1).astype(np.float32)
    tiles = figures._cells(series, (), (), "line")  # pylint: disable=protected-access
    assert tiles[0].size == figures.LINE_CELL
    assert np.asarray(tiles[0]).min() < 100  # the line is drawn
    words = figures._text_tile("a few words " * 12)  # pylint: disable=protected-access
    assert words.size == figures.TEXT_CELL
