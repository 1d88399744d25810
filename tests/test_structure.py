"""The package's import structure, read from the source with ``ast`` (nothing is imported).

* No import cycle among module-level imports of tfvis modules: dependencies point one way, so no
  module needs an import inside a function to dodge a circle.
* No import of a tfvis module inside a function in the modules listed in :data:`CLEAN`: such an
  import defers nothing (the module imported it anyway, or TensorFlow is loaded already) and
  hides the dependency. Modules kept light on purpose are not listed: the command lines, whose
  ``--help`` needs no TensorFlow; the lazy packages ``tfvis`` and ``tfvis.saliency``; and
  ``tfvis.compare.cka`` and ``.similarity``, whose NumPy CKA runs without TensorFlow.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tfvis"

#: Modules whose functions import no tfvis module. Extend it as more modules are cleaned.
CLEAN = (
    "tfvis.activations",
    "tfvis.compare",
    "tfvis.compare.study",
    "tfvis.deconv",
    "tfvis.display",
    "tfvis.featurevis",
    "tfvis.featurevis.activation_atlas",
    "tfvis.featurevis.caricatures",
    "tfvis.featurevis.objectives",
    "tfvis.featurevis.param",
    "tfvis.featurevis.render",
    "tfvis.featurevis.transforms",
    "tfvis.fileio",
    "tfvis.graph",
    "tfvis.image_pages",
    "tfvis.images",
    "tfvis.inversion",
    "tfvis.layer_lookup",
    "tfvis.layer_names",
    "tfvis.layers",
    "tfvis.models",
    "tfvis.models.alexnet",
    "tfvis.models.custom_layers",
    "tfvis.models.errors",
    "tfvis.models.inceptionv1",
    "tfvis.models.info",
    "tfvis.models.inputs",
    "tfvis.models.labels",
    "tfvis.models.onnx_import",
    "tfvis.models.safeload",
    "tfvis.models.spec",
    "tfvis.models.surgery",
    "tfvis.models.vgg16",
    "tfvis.models.weights",
    "tfvis.models.zoo",
    "tfvis.optim",
    "tfvis.pipeline",
    "tfvis.pipeline.activation_atlas_units",
    "tfvis.pipeline.caricature_units",
    "tfvis.pipeline.context",
    "tfvis.pipeline.engines",
    "tfvis.pipeline.faithfulness_units",
    "tfvis.pipeline.image_units",
    "tfvis.pipeline.layer_report",
    "tfvis.pipeline.plan",
    "tfvis.pipeline.raydata",
    "tfvis.pipeline.sanity_units",
    "tfvis.pipeline.store",
    "tfvis.pipeline.study_units",
    "tfvis.pipeline.units",
    "tfvis.pipeline.work",
    "tfvis.precision",
    "tfvis.receptive_field",
    "tfvis.report",
    "tfvis.rules",
    "tfvis.saliency.classmodel",
    "tfvis.saliency.faithfulness",
    "tfvis.saliency.gradcam",
    "tfvis.saliency.gradient",
    "tfvis.saliency.integrated",
    "tfvis.saliency.methods",
    "tfvis.saliency.sanity",
    "tfvis.saliency.smoothing",
    "tfvis.sanity_pages",
    "tfvis.startup",
    "tfvis.targets",
    "tfvis.topk",
)


def _module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules():
    """``{module name: (path, is package)}`` of every module of tfvis."""
    return {_module_name(path): (path, path.name == "__init__.py") for path in sorted(PACKAGE.rglob("*.py"))}


MODULES = _modules()


def _base(module, node):
    """The absolute module an ``ImportFrom`` node of ``module`` names (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    _, is_package = MODULES[module]
    parts = module.split(".")
    parts = parts if is_package else parts[:-1]
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


def _imported(module, node):
    """The tfvis modules an import statement of ``module`` makes Python run, itself excluded."""
    if isinstance(node, ast.Import):
        named = [alias.name for alias in node.names]
    else:
        base = _base(module, node)
        named = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
    found = set()
    for name in named:
        parts = name.split(".")
        # Importing a.b.c runs a, a.b and a.b.c; the packages that hold ``module`` are running already.
        for end in range(1, len(parts) + 1):
            target = ".".join(parts[:end])
            if target in MODULES and target != module and not module.startswith(target + "."):
                found.add(target)
    return found


def _walk(node, in_function=False):
    """``(import node, inside a function)`` for every import statement under ``node``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, in_function
        inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        yield from _walk(child, inner)


def _imports():
    """``(module-level edges, function-level imports)``: ``{module: set of modules}`` and ``{module: [(line, module)]}``."""
    edges, deferred = {}, {}
    for module, (path, _) in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        edges[module] = set()
        for node, in_function in _walk(tree):
            targets = _imported(module, node)
            if in_function:
                deferred.setdefault(module, []).extend((node.lineno, target) for target in sorted(targets))
            else:
                edges[module] |= targets
    return edges, deferred


EDGES, DEFERRED = _imports()


def _cycle(edges):
    """One import cycle as a list of modules (first repeated last), or None."""
    state, stack = {}, []

    def visit(module):
        state[module] = "open"
        stack.append(module)
        for target in sorted(edges.get(module, ())):
            if state.get(target) == "open":
                return stack[stack.index(target) :] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        state[module] = "done"
        return None

    for module in sorted(edges):
        if module not in state:
            found = visit(module)
            if found:
                return found
    return None


def test_the_reader_sees_the_package():
    assert {"tfvis", "tfvis.graph", "tfvis.targets", "tfvis.models", "tfvis.models.surgery"} <= set(MODULES)
    assert "tfvis.graph" in EDGES["tfvis.targets"]
    assert {"tfvis.graph", "tfvis.layer_lookup", "tfvis.targets"} <= EDGES["tfvis.models.surgery"]
    # a submodule import runs the package first: tfvis.rules reaches tfvis.models through models.custom_layers
    assert {"tfvis.models", "tfvis.models.custom_layers"} <= EDGES["tfvis.rules"]


def test_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_module_level_imports_form_no_cycle():
    assert _cycle(EDGES) is None


def test_the_layer_lookup_is_a_leaf():
    assert EDGES["tfvis.layer_lookup"] == set()


@pytest.mark.parametrize("module", CLEAN)
def test_no_tfvis_import_inside_functions(module):
    assert module in MODULES, f"{module} is no longer a module of tfvis: update CLEAN"
    assert DEFERRED.get(module, []) == [], f"{module} imports tfvis modules inside functions at lines {DEFERRED[module]}"


def test_function_level_imports_listed():
    """What is left elsewhere, for whoever extends :data:`CLEAN` (printed with ``pytest -s``)."""
    left = {module: found for module, found in DEFERRED.items() if found and module not in CLEAN}
    for module, found in sorted(left.items()):
        print(module, ", ".join(f"{target} (line {line})" for line, target in found))


#: What ``ruff`` checks: the package, the tests, the benchmarks and the documentation scripts.
FORMATTED = ["tfvis", "tests", "benchmarks", "docs", "setup.py"]


@pytest.mark.parametrize("command", [["format", "--check"], ["check"]], ids=["format", "lint"])
def test_code_is_formatted_and_lint_clean(command):
    """``ruff format --check`` and ``ruff check`` (configured in pyproject.toml) pass on the whole tree."""
    import subprocess
    import sys

    pytest.importorskip("ruff", reason="ruff is in the test extra: pip install -e '.[test]'")
    done = subprocess.run(
        [sys.executable, "-m", "ruff", *command, *FORMATTED], cwd=PACKAGE.parent, capture_output=True, text=True
    )
    assert done.returncode == 0, f"ruff {' '.join(command)}:\n{done.stdout}{done.stderr}"
