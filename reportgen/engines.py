"""The two site generators that can turn ``docs/`` into ``site/``: MkDocs with Material (the default) and Zensical.

Both read the one ``mkdocs.yml``. :func:`prepare` returns the command that builds it into a folder of the build's
temporary directory, and :func:`failure` turns a failed build's log into one line plus the log lines that
explain it; :func:`reportgen.site.build_site` runs either the same way (offsite check, atomic swap into site/).

Zensical reads ``mkdocs.yml`` but not all of it, so :func:`write_zensical_config` writes the copy it builds from:

- the MkDocs-only ``!relative $config_dir`` / ``!relative $docs_dir`` tags become absolute paths (Zensical's YAML
  loader knows ``!ENV`` only), and ``!ENV`` is resolved as MkDocs resolves it;
- the theme keeps Material's look (``variant: classic``; Zensical's default is its new "modern" look), and a
  ``custom_dir`` is made absolute;
- the build's root is the temporary directory, holding a hard-linked copy of ``docs/``: Zensical keeps its cache
  in ``<root>/.cache`` and ``--clean`` deletes that whole folder, which in the project is our analysis cache.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

ENGINES = ("mkdocs", "zensical")
DEFAULT_ENGINE = "mkdocs"  # until Zensical has parity (docs/about.md, "Building with Zensical", lists the gaps)
ZENSICAL_VARIANT = "classic"  # Zensical's Material look; its own default, "modern", is a different design
ZENSICAL_INSTALL = "pip install -e '.[zensical]'"  # the extra in pyproject.toml pins the version that installs


class EngineError(Exception):
    """A one-line problem preparing a build (reportgen.site turns it into a SiteError)."""


@dataclass(frozen=True)
class Job:
    """How to run one build: the command, its working directory, and where the site appears."""
    argv: list[str]
    cwd: Path
    output: Path


def prepare(engine: str, project_dir: Path, config_file: Path, work: Path, strict: bool) -> Job:
    """The build of ``config_file`` by ``engine`` into ``work/site`` (``work`` is an empty temporary folder)."""
    output = work / "site"
    if engine == "mkdocs":
        argv = [sys.executable, "-m", "mkdocs", "build", "--clean", "--config-file", str(config_file),
                "--site-dir", str(output)]
        cwd = project_dir  # snippet paths and the log are the project's
    elif engine == "zensical":
        if importlib.util.find_spec("zensical") is None:
            raise EngineError(f"--engine zensical: Zensical is not installed; install it with `{ZENSICAL_INSTALL}`")
        config = write_zensical_config(project_dir, config_file, work)
        argv = [sys.executable, "-m", "zensical", "build", "--config-file", str(config)]
        cwd = work
    else:
        raise EngineError(f"unknown site engine {engine!r}; choose one of {', '.join(ENGINES)}")
    return Job(argv + (["--strict"] if strict else []), cwd, output)


# --------------------------------------------------------------------------------------------- Zensical's config
def write_zensical_config(project_dir: Path, config_file: Path, work: Path) -> Path:
    """Write ``work/mkdocs.yml``, the project's config as Zensical can read it, and link ``docs/`` into ``work``.

    Zensical wants docs_dir and site_dir inside the config file's folder, and resolves symlinks, so the docs are
    a hard-linked copy (a plain copy across file systems): milliseconds, and nothing of the project is written.
    """
    config = load_mkdocs_config(project_dir, config_file)
    docs = project_dir / str(config.get("docs_dir") or "docs")
    shutil.copytree(docs, work / "docs", copy_function=_link_or_copy)
    config.update(docs_dir="docs", site_dir="site")
    theme = config.get("theme") or {}
    theme = {"name": theme} if isinstance(theme, str) else dict(theme)
    theme.setdefault("variant", ZENSICAL_VARIANT)
    if theme.get("custom_dir"):  # relative to mkdocs.yml, which is not beside this copy
        theme["custom_dir"] = str(project_dir / str(theme["custom_dir"]))
    config["theme"] = theme
    target = work / "mkdocs.yml"
    target.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return target


def load_mkdocs_config(project_dir: Path, config_file: Path) -> dict:
    """``mkdocs.yml`` as plain data, with ``!ENV`` and ``!relative $config_dir|$docs_dir[/sub]`` resolved."""
    try:
        text = config_file.read_text(encoding="utf-8")
        structure = yaml.load(text, Loader=_StructureLoader)
        docs_dir = (structure.get("docs_dir") if isinstance(structure, dict) else None) or "docs"
        loader = _ResolvingLoader(text)
        loader.bases = {"$config_dir": project_dir, "$docs_dir": project_dir / str(docs_dir)}
        try:
            config = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f": line {where.line + 1}" if where is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise EngineError(f"{config_file}{line}: cannot translate it for Zensical: {problem}") from None
    if not isinstance(config, dict):
        raise EngineError(f"{config_file}: not a mapping of settings")
    return config


class _StructureLoader(yaml.SafeLoader):
    """Reads every tag as None: enough to find docs_dir before the tags can be resolved."""


_StructureLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


class _ResolvingLoader(yaml.SafeLoader):
    """The safe loader plus MkDocs's ``!ENV`` and ``!relative`` tags (``bases`` set per document)."""
    bases: dict[str, Path] = {}


def _relative(loader: _ResolvingLoader, node: yaml.Node) -> str:
    value = loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode) else None
    prefix, _, suffix = (value or "").partition("/")
    if prefix not in loader.bases:
        raise yaml.constructor.ConstructorError(
            None, None, f"`{('!relative ' + (value or '')).strip()}` has no Zensical equivalent (only "
            f"`!relative $config_dir/...` and `!relative $docs_dir/...` have)", node.start_mark)
    return str(loader.bases[prefix] / suffix) if suffix else str(loader.bases[prefix])


def _env_tag(loader: yaml.SafeLoader, node: yaml.Node):
    from yaml_env_tag import construct_env_tag  # MkDocs's own !ENV (a dependency of mkdocs)
    return construct_env_tag(loader, node)


_ResolvingLoader.add_constructor("!ENV", _env_tag)
_ResolvingLoader.add_constructor("!relative", _relative)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system, or links not allowed
        shutil.copy2(src, dst)


# --------------------------------------------------------------------------------------------- failures
_MKDOCS_LOG_LINE = re.compile(r"^\s*(WARNING|ERROR|CRITICAL)\b")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # Zensical colours its report whatever NO_COLOR says
_ZENSICAL_ISSUE = re.compile(r"^(Warning|Error):\s*(.+)$")
_ZENSICAL_WHERE = re.compile(r"\[\s*(\S+:\d+:\d+)\s*\]")  # "╭─[ blog/posts/x.md:12:5 ]"
_EXCEPTION = re.compile(r"^(?:\w+\.)*\w*(?:Error|Exception):\s*(.+)$")


def failure(engine: str, log: str, returncode: int, strict: bool) -> str:
    """One line saying the build failed and why, then the log lines that explain it (never a traceback)."""
    explain = _mkdocs_failure if engine == "mkdocs" else _zensical_failure
    reason, logged = explain(log)
    mode = "strict " if strict else ""
    reason = f": {reason.rstrip('!.')}" if reason else ""
    head = f"{engine} {mode}build failed (exit status {returncode}){reason}; the previous site/ is unchanged"
    return "\n".join([head, *("  " + line for line in logged)])


def _mkdocs_failure(log: str) -> tuple[str, list[str]]:
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    logged = [line for line in lines if _MKDOCS_LOG_LINE.match(line)]
    # MkDocs's own last word ("Aborted with 2 warnings in strict mode!", "Error: ..."), or a crash's exception.
    final = [line for line in lines if not _MKDOCS_LOG_LINE.match(line)
             and not line.startswith(("File ", "Traceback", "INFO", "DEBUG"))][-1:]
    return (final[0] if final else ""), logged


def _zensical_failure(log: str) -> tuple[str, list[str]]:
    """Zensical draws each issue as a box: "Warning: page does not exist", then "╭─[ about.md:102:15 ]" and the
    source line; a failed build then ends in a Python traceback whose exception says why it stopped."""
    lines = [_ANSI.sub("", line).rstrip() for line in log.splitlines()]
    logged: list[str] = []
    reason = ""
    for index, line in enumerate(lines):
        issue = _ZENSICAL_ISSUE.match(line)
        if issue:
            where = next((m.group(1) for m in map(_ZENSICAL_WHERE.search, lines[index + 1:index + 3]) if m), "")
            logged.append(f"{issue.group(1).upper()}: {issue.group(2)}" + (f" ({where})" if where else ""))
        elif not reason and (exception := _EXCEPTION.match(line)):  # the first, outermost one, at column 0
            reason = re.sub(r"^(Python error:\s*)?(\w+Error:\s*)?", "", exception.group(1))
    return reason, logged
