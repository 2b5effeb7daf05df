"""DESIGN.md section 2: layers import only from layers before them; nothing imports cli."""
from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "simulator"

# units, errors -> schema -> loading -> graph, hardware -> cost, calibrate (beside cost)
# -> parallel -> sim, serving -> plan -> report -> cli
RANK = {
    "units": 0, "errors": 0, "schema": 1, "loading": 2,
    "graph": 3, "hardware": 3, "cost": 4, "calibrate": 4,
    "parallel": 5, "sim": 6, "serving": 6, "plan": 7, "report": 8, "cli": 9,
    "__main__": 10, "__init__": 10,
}


def _layer_of(module_path: Path, pkg: Path) -> str:
    rel = module_path.relative_to(pkg)
    return rel.parts[0].removesuffix(".py")


def _imported_layers(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("simulator."):
                    yield node.lineno, alias.name.split(".")[1]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("simulator."):
                yield node.lineno, node.module.split(".")[1]
            elif node.module == "simulator":
                for alias in node.names:
                    yield node.lineno, alias.name


def layering_violations(pkg: Path = PKG) -> list[str]:
    bad = []
    for path in sorted(pkg.rglob("*.py")):
        layer = _layer_of(path, pkg)
        if layer not in RANK:
            bad.append(f"{path}: layer '{layer}' is not in the DESIGN.md layering")
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for lineno, target in _imported_layers(tree):
            if target not in RANK or target == "__version__":
                continue
            if target == "cli" and layer != "cli":
                bad.append(f"{path}:{lineno} imports cli")
            elif RANK[target] > RANK[layer]:
                bad.append(f"{path}:{lineno} ({layer}) imports later layer {target}")
    return bad


def test_no_layering_violations():
    assert layering_violations() == []


def test_checker_catches_a_violation(tmp_path):
    fake = tmp_path / "simulator"
    (fake / "graph").mkdir(parents=True)
    (fake / "graph" / "x.py").write_text("from simulator.plan import search\n")
    (fake / "cost").mkdir()
    (fake / "cost" / "y.py").write_text("import simulator.cli.app\n")
    found = layering_violations(fake)
    assert any("imports later layer plan" in f for f in found)
    assert any("imports cli" in f for f in found)
