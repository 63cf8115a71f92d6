"""What a report.html must show, recomputed independently from scores.npz (shared by
tests/test_report.py, which parses the HTML, and tests/test_report_browser.py, which reads the
page Chromium rendered)."""

from __future__ import annotations

import html.parser
import pathlib

import numpy as np

from regularity_jax.metrics import difficulty
from regularity_jax.runs import scores_file


def slow_pick(values, members, k, seed, hardest):
  """The k positions (of `members`) a grid shows, by sorting tuples: unscored (NaN) last, then
  by value (descending for the hardest), then by the tie permutation of `seed` over the
  class's members (what `difficulty.order(..., ties="random")` documents)."""
  perm = np.random.default_rng(seed).permutation(len(members))
  v = np.asarray(values, np.float64)[members]

  def key(j):
    nan = bool(np.isnan(v[j]))
    return (nan, 0.0 if nan else (-v[j] if hardest else v[j]), perm[j])

  return [int(members[j]) for j in sorted(range(len(members)), key=key)[:k]]


def expected_grids(scores, k=16, seed=0) -> dict[str, list[int]]:
  """{"<split>/<score>/<label>/<end>": example ids} for every score the table can compute."""
  out = {}
  for split, names in (("train", difficulty.TRAIN_SCORES), ("test", difficulty.TEST_SCORES)):
    labels = np.asarray(scores[f"{split}/label"])
    ids = np.asarray(scores[f"{split}/example_id"])
    for name in names:
      try:
        values = difficulty.from_scores(name, scores)
      except ValueError:
        continue
      if not np.any(np.isfinite(values)):
        continue
      for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        for end in ("hardest", "easiest"):
          rows = slow_pick(values, members, k, seed, end == "hardest")
          out[f"{split}/{name}/{int(label)}/{end}"] = ids[rows].tolist()
  return out


class GridParser(html.parser.HTMLParser):
  """Collects {"<split>/<score>/<label>/<end>": [data-id, ...]} and every URL-like attribute."""

  def __init__(self):
    super().__init__()
    self.grids: dict[str, list[int]] = {}
    self.urls: list[str] = []
    self._current = None

  def handle_starttag(self, tag, attrs):
    a = dict(attrs)
    if tag == "div" and "grid" in (a.get("class") or "").split():
      self._current = f"{a['data-split']}/{a['data-score']}/{a['data-label']}/{a['data-end']}"
      self.grids[self._current] = []
    if tag == "figure" and self._current is not None:
      self.grids[self._current].append(int(a["data-id"]))
    for name in ("src", "href", "xlink:href"):
      if name in a:
        self.urls.append(a[name])


def parse(path: pathlib.Path) -> GridParser:
  parser = GridParser()
  parser.feed(pathlib.Path(path).read_text(encoding="utf-8"))
  return parser


def check_report(workdir, k=16) -> GridParser:
  """report.html of `workdir` shows exactly the expected grids and refers to nothing outside."""
  workdir = pathlib.Path(workdir)
  scores = scores_file.load(workdir / "scores.npz").arrays
  parser = parse(workdir / "report.html")
  score_grids = {key: ids for key, ids in parser.grids.items() if "/data_map/" not in key}
  expected = expected_grids(scores, k=k)
  assert set(score_grids) == set(expected)
  for key, ids in expected.items():
    assert score_grids[key] == ids, key
  if "train/confidence" in scores:
    conf = np.asarray(scores["train/confidence"], np.float64)
    var = np.asarray(scores["train/variability"], np.float64)
    ids = np.asarray(scores["train/example_id"])
    ok = np.isfinite(conf) & np.isfinite(var)
    everyone = np.flatnonzero(ok)
    regions = {"easy-to-learn": slow_pick(conf, everyone, k, 0, True),
               "ambiguous": slow_pick(var, everyone, k, 0, True),
               "hard-to-learn": slow_pick(conf, everyone, k, 0, False)}
    for region, rows in regions.items():
      assert parser.grids[f"train/data_map/-1/{region}"] == ids[rows].tolist(), region
  for url in parser.urls:  # only in-page anchors, symbols and data URIs
    assert url.startswith(("#", "data:")), url
  text = (workdir / "report.html").read_text(encoding="utf-8")
  assert "http://" not in text.replace("http://www.w3.org", "") and "https://" not in text
  return parser
