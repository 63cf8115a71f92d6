"""The documentation site's inputs: every public function, class and method of the documented
modules has a docstring (mkdocstrings renders them; `mkdocs build --strict` in CI's Python 3.12
job checks links and API entries), and mkdocs.yml's nav names every page of docs/."""

import importlib
import inspect
import pathlib
import re

REPO = pathlib.Path(__file__).resolve().parents[1]

# The modules of the API reference (docs/api/*.md).
DOCUMENTED = ("regularity_jax.metrics", "regularity_jax.metrics.forgetting",
              "regularity_jax.metrics.cumulative", "regularity_jax.metrics.margins",
              "regularity_jax.metrics.margin_distribution", "regularity_jax.metrics.confidence",
              "regularity_jax.metrics.losses", "regularity_jax.metrics.scores",
              "regularity_jax.metrics.seeds", "regularity_jax.metrics.indexing",
              "regularity_jax.metrics.difficulty", "regularity_jax.metrics.tracker",
              "regularity_jax.training.config")


def undocumented(module) -> list[str]:
  """The public names defined in `module` (and public methods of its classes) without a
  docstring, and the module itself if it has none."""
  missing = [] if (module.__doc__ or "").strip() else [module.__name__]
  for name, obj in vars(module).items():
    if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
      continue
    if not (inspect.isfunction(obj) or inspect.isclass(obj)):
      continue
    if not (inspect.getdoc(obj) or "").strip():
      missing.append(f"{module.__name__}.{name}")
    if inspect.isclass(obj):
      missing += [f"{module.__name__}.{name}.{m}" for m, f in vars(obj).items()
                  if not m.startswith("_") and inspect.isfunction(f) and not (f.__doc__ or "").strip()]
  return missing


def test_documented_modules_have_docstrings():
  missing = [m for name in DOCUMENTED for m in undocumented(importlib.import_module(name))]
  assert not missing, f"no docstring: {missing}"


def test_the_check_finds_a_missing_docstring():
  fake = type(inspect)("fake_module", "a module")
  exec("def documented():\n  '''yes'''\ndef bare():\n  pass\n"  # pylint: disable=exec-used
       "class K:\n  '''k'''\n  def method(self):\n    pass\n", vars(fake))
  assert undocumented(fake) == ["fake_module.bare", "fake_module.K.method"]


def test_api_pages_cover_the_documented_modules():
  pages = "".join(p.read_text() for p in (REPO / "docs" / "api").glob("*.md"))
  named = set(re.findall(r"^::: ([\w.]+)", pages, flags=re.M))
  for name in DOCUMENTED:
    assert name in named or any(n.startswith(name + ".") for n in named), name


def test_nav_names_every_page():
  nav = set(re.findall(r":\s*([\w/]+\.md)\s*$", (REPO / "mkdocs.yml").read_text(), flags=re.M))
  pages = {str(p.relative_to(REPO / "docs")) for p in (REPO / "docs").rglob("*.md")}
  assert pages == nav, (pages - nav, nav - pages)
