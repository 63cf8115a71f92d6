"""report.html in a real browser: headless Chromium opens the reports of smoke runs from the
file system and finds no console error, no network request, and in every grid the examples
that scores.npz says (recomputed through the score registry by tests/report_checks.py).

Needs Debian's `chromium` (/usr/bin/chromium, or $REGJAX_CHROMIUM) and the `playwright` Python
package (requirements.txt). Without them the tests skip, except when REGJAX_REQUIRE_BROWSER=1
(CI's .ci/run sets it): then they fail.
"""

import os
import pathlib
import shutil

import pytest

from regularity_jax.training import default_config
from regularity_jax.training import train_and_evaluate
from tests import engine_fixtures
from tests import report_checks

# Each test drives Chromium over a whole run's report: the slow tier.
pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("REGJAX_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# The flags this machine's closed network needs (no background connections).
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOT_DIR = os.environ.get("REGJAX_SCREENSHOT_DIR")


def _need_browser():
  missing = []
  try:
    import playwright.sync_api  # pylint: disable=unused-import,import-outside-toplevel
  except ImportError:
    missing.append("the playwright package (pip install playwright)")
  if not os.path.exists(CHROMIUM):
    missing.append(f"Chromium at {CHROMIUM} (apt-get install chromium)")
  if missing:
    message = "browser test needs " + " and ".join(missing)
    if os.environ.get("REGJAX_REQUIRE_BROWSER") == "1":
      pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser():
  _need_browser()
  from playwright.sync_api import sync_playwright  # pylint: disable=import-outside-toplevel
  with sync_playwright() as p:
    b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
    yield b
    b.close()


def _open(browser, report_path, screenshot=None):
  """Loads the page; returns (page data, console errors, requested URLs)."""
  context = browser.new_context(viewport={"width": 1400, "height": 1000})
  page = context.new_page()
  errors, requests = [], []
  page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
  page.on("pageerror", lambda e: errors.append(str(e)))
  page.on("requestfailed", lambda r: errors.append(f"failed: {r.url}"))
  context.on("request", lambda r: requests.append(r.url))
  page.goto(pathlib.Path(report_path).resolve().as_uri())
  page.wait_for_load_state("load")
  grids = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('div.grid')]
      .map(g => [`${g.dataset.split}/${g.dataset.score}/${g.dataset.label}/${g.dataset.end}`,
                 [...g.querySelectorAll('figure.th')].map(f => Number(f.dataset.id))]))""")
  # Every thumbnail is drawn: a sprite cell with a size, or an SVG line plot with a polyline.
  drawn = page.evaluate("""() => [...document.querySelectorAll('figure.th')].every(f => {
      const im = f.querySelector('.im, svg.line'); const r = im.getBoundingClientRect();
      return r.width > 10 && r.height > 10; })""")
  sheets = page.evaluate("""() => [...document.querySelectorAll('.im')].slice(0, 50)
      .every(e => getComputedStyle(e).backgroundImage.startsWith('url("data:image/'))""")
  images_loaded = page.evaluate("""() => [...document.images]
      .every(i => i.complete && i.naturalWidth > 0)""")
  if screenshot:
    page.evaluate("document.getElementById('train').scrollIntoView()")
    page.screenshot(path=str(screenshot))
  context.close()
  return {"grids": grids, "drawn": drawn, "sheets": sheets, "images": images_loaded}, errors, \
      requests


def _check(browser, workdir, tmp_path, k=16):
  report = pathlib.Path(workdir) / "report.html"
  shot = pathlib.Path(SCREENSHOT_DIR or tmp_path) / f"report_{pathlib.Path(workdir).name}.png"
  got, errors, requests = _open(browser, report, screenshot=shot)
  assert errors == []
  assert requests == [report.resolve().as_uri()]  # the page itself, nothing else
  assert got["drawn"] and got["sheets"] and got["images"]
  scores = report_checks.scores_file.load(pathlib.Path(workdir) / "scores.npz").arrays
  expected = report_checks.expected_grids(scores, k=k)
  shown = {key: ids for key, ids in got["grids"].items() if "/data_map/" not in key}
  assert shown == expected
  assert shot.read_bytes()[:4] == b"\x89PNG" and shot.stat().st_size > 20_000


def test_image_run_report_in_chromium(browser, tmp_path):
  engine_fixtures.write_tiny_npz(tmp_path / "data", n_train=160, shape=(10, 10, 1))
  config = engine_fixtures.tiny_config(tmp_path / "data", **{
      "report": True, "plots": True, "report_k": 6, "corruption.kind": "symmetric",
      "corruption.fraction": 0.2})
  result = train_and_evaluate(config, tmp_path / "tiny_images")
  _check(browser, result.workdir, tmp_path, k=6)


def test_quickstart_smoke_report_in_chromium(browser, tmp_path):
  """The quickstart's smoke config (MNIST-1D: line plots), on a subset."""
  from experiments.configs import quickstart  # pylint: disable=import-outside-toplevel
  config = quickstart.get_config("smoke")
  config.update_from_flattened_dict({"train_subset": 1000, "test_subset": 300,
                                     "num_epochs": 3, "progress_bar": False})
  result = train_and_evaluate(config, tmp_path / "quickstart_smoke")
  _check(browser, result.workdir, tmp_path)


SHARED_DATA = pathlib.Path(os.environ.get(
    "REGULARITY_JAX_SHARED_DATA",
    pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"))


@pytest.mark.parametrize("module,folder,overrides", [
    ("mnist_toneva", "mnist", {"train_subset": 1000, "test_subset": 500}),
    ("cifar10_resnet18", "cifar10_jpeg_q75", {}),  # the smoke config as it is
])
def test_smoke_config_report_in_chromium(browser, tmp_path, module, folder, overrides):
  """The image smokes of the README (MNIST 28x28 gray, CIFAR-10 JPEG 32x32 color)."""
  import importlib  # pylint: disable=import-outside-toplevel
  if not (SHARED_DATA / folder).is_dir():
    pytest.skip(f"shared data {SHARED_DATA / folder} not present (set "
                "REGULARITY_JAX_SHARED_DATA to the folder holding it)")
  config = importlib.import_module(f"experiments.configs.{module}").get_config("smoke")
  config.update_from_flattened_dict({"data_dir": str(SHARED_DATA / folder),
                                     "progress_bar": False, **overrides})
  result = train_and_evaluate(config, tmp_path / f"{module}_smoke")
  _check(browser, result.workdir, tmp_path)


def test_report_from_logs_in_chromium(browser, tmp_path):
  """The report `python -m regularity_jax.score_logs` writes from a loop's logs (docs/any_loop.md),
  with the examples given as an .npz."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  from regularity_jax import logs, score_logs  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  n, m, c = 96, 40, 4
  y, y_test = rng.integers(0, c, n), rng.integers(0, c, m)
  np.savez(tmp_path / "x.npz", x_train=rng.random((n, 10, 10, 1), np.float32),
           x_test=rng.random((m, 10, 10, 1), np.float32))
  with logs.Logger(tmp_path / "logs", num_examples={"train": n, "test": m},
                   num_classes=c) as logger:
    for epoch in range(3):
      for ids in np.array_split(rng.permutation(n), 6):
        logits = rng.normal(size=(len(ids), c)) + 2.0 * np.eye(c)[y[ids]] * (epoch + 1)
        logger.log(ids, logits, y[ids], epoch=epoch)
      logger.log(np.arange(m), rng.normal(size=(m, c)) + np.eye(c)[y_test] * epoch, y_test,
                 epoch=epoch, split="test", stream="evaluation")
  run = score_logs.score_logs(tmp_path / "logs", tmp_path / "from_logs", k=6,
                              class_names=["a", "b", "c", "d"], examples=tmp_path / "x.npz")
  _check(browser, run, tmp_path, k=6)


def test_unchanged_default_is_on():
  assert default_config().report is True and default_config().report_k == 16
