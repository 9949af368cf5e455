"""How the package is put together: one helper per concern, no import cycles among the modules that used to have
them, and results typed where they cross modules."""
import ast
from pathlib import Path

import pytest

from reportgen.suggest import suggest

PACKAGE = Path(__file__).resolve().parent.parent / "reportgen"


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in it (relative imports resolved within reportgen)."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module) if p)
            found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


@pytest.mark.parametrize("lower,upper", [("data", "provision"), ("analyses/_shift_findings", "analyses/_shift")])
def test_a_lower_module_never_imports_the_one_that_builds_on_it(lower, upper):
    assert f"reportgen.{upper.replace('/', '.')}" not in imported_modules(PACKAGE / f"{lower}.py")


def test_closest_names_come_from_one_helper():
    users = [p.name for p in PACKAGE.rglob("*.py") if "get_close_matches" in p.read_text()]
    assert users == ["suggest.py"]
    assert suggest("dropot", ["dropout", "tiny"]) == "; did you mean 'dropout'?"
    assert suggest("zzz", ["dropout", "tiny"]) == ""


def test_results_that_cross_modules_are_not_dicts():
    for name in ("stats.py", "summary.py", "measures.py", "conclusions.py", "context.py", "home.py"):
        source = (PACKAGE / name).read_text()
        assert "-> dict[str, Any]" not in source and "exp: Any" not in source, name


def test_the_cli_and_the_pipeline_load_without_the_heavy_libraries():
    """What every command loads before it does anything (``reportgen --help`` included): the CLI and the whole
    pipeline, without torch, matplotlib, scipy.stats, onnx or Ray. Those are imported where something is trained,
    drawn, measured or exported; each costs a second or more."""
    import subprocess
    import sys
    heavy = ["torch", "matplotlib", "scipy.stats", "onnx", "ray"]
    code = ("import sys, reportgen.cli, reportgen.pipeline\n"
            "try:\n    reportgen.cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
            f"print(','.join(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Usage" in done.stdout
    assert done.stderr.strip() == "", f"loaded at start: {done.stderr.strip()}"
