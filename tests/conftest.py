"""Shared fixtures: a project directory with synthetic Fashion-MNIST IDX files provisioned through the real
torchvision reader, the shipped study files, and empty results/docs. Never touches the real data."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.synthetic import write_idx_dataset

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def synthetic_idx(tmp_path_factory) -> Path:
    """Four raw IDX files of a small, learnable dataset (600 train / 200 test)."""
    directory = tmp_path_factory.mktemp("idx")
    write_idx_dataset(directory, n_train=600, n_test=200)
    return directory


@pytest.fixture
def data_root(tmp_path, monkeypatch, synthetic_idx) -> Path:
    """REPORTGEN_DATA pointing at a fresh root where fashion-mnist is provisioned from the synthetic files."""
    from reportgen.provision import provision
    root = tmp_path / "data"
    monkeypatch.setenv("REPORTGEN_DATA", str(root))
    monkeypatch.setenv("REPORTGEN_SKIP_CHECKSUM", "1")
    monkeypatch.setenv("REPORTGEN_OFFLINE", "1")
    provision("fashion-mnist", root, from_dir=synthetic_idx, skip_checksum=True, allow_download=False,
              allow_install=False, log=lambda *_: None)
    return root


@pytest.fixture
def project(tmp_path, data_root, monkeypatch) -> Path:
    """A project directory (cwd) with experiments/dropout.yaml, docs/ and mkdocs.yml copied from the repo."""
    proj = tmp_path / "project"
    (proj / "experiments").mkdir(parents=True)
    shutil.copy(ROOT / "experiments" / "dropout.yaml", proj / "experiments")
    monkeypatch.chdir(proj)
    monkeypatch.delenv("REPORTGEN_RESULTS", raising=False)
    return proj


# Generated into docs/ by reportgen: left out of a copy of the hand-written site.
GENERATED_DOCS = ("index.md", "write-your-own.md", "methods.md", "blog/posts", "assets/vendor", "assets/figures")


def copy_site_sources(project: Path, model_source: bool = True) -> None:
    """Into ``project``: mkdocs.yml, the hand-written docs/ (without what reportgen generates), the vendored npm
    packages (fetched once into the repository's gitignored docs/assets/vendor) and, with ``model_source``,
    reportgen/ itself, whose source the posts quote in snippets."""
    from reportgen.site import SiteError, vendor_assets
    try:
        vendor_assets(ROOT / "docs")
    except SiteError as exc:
        pytest.fail(f"cannot vendor the site's npm packages: {exc}", pytrace=False)

    def skip_generated(directory: str, names: list[str]) -> set[str]:
        rel = Path(directory).relative_to(ROOT / "docs")
        return {n for n in names if (rel / n).as_posix() in GENERATED_DOCS or n == "__pycache__"}
    project.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "mkdocs.yml", project)
    shutil.copytree(ROOT / "docs", project / "docs", ignore=skip_generated)
    shutil.copytree(ROOT / "docs" / "assets" / "vendor", project / "docs" / "assets" / "vendor")
    if model_source:
        shutil.copytree(ROOT / "reportgen", project / "reportgen", ignore=shutil.ignore_patterns("__pycache__"))


def invoke(*args: str):
    """Run the CLI in-process; returns Click's Result (exit_code, output)."""
    from click.testing import CliRunner
    from reportgen.cli import cli
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def run_main(*args: str) -> tuple[int, str, str]:
    """``reportgen ARGS`` in-process through the console entry point (its error handling and exit codes):
    (exit code, stdout, stderr)."""
    import contextlib
    import io

    from reportgen.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()
