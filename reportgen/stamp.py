"""Keeping a post whose inputs did not change, instead of rendering it again.

A post is a function of its inputs: the study's runs (each run's recorded file digests, read from its completion
marker once the run was checked), the study file and its prose, the profile, the posts it may link to, the
package's code and templates, the provisioned data, the environment that changes an analysis, and the versions of
the libraries that draw and compute. :func:`inputs` hashes them; after a render, :func:`record` writes that key
with the digests of the post and its figures to ``.cache/posts/<study>.json``. The next render of the same inputs
is skipped when :func:`fresh` finds the key unchanged and the post and figures on disk exactly as written, so a
warm ``reportgen build`` spends its time on the site, not on posts it would write byte for byte again.

Two more steps are skipped the same way, by a key of their inputs under ``.cache/<kind>/<study>.json``
(:func:`seen`, :func:`remember`): the checks before any work (:func:`preflight_key`; a study that passed them with
the same inputs passes again) and the analysis precompute of ``reportgen run`` (:func:`precompute_key`). A warm
``run`` or ``build`` then imports neither torch nor matplotlib.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__, i18n
from .fsutil import atomic_write, sha256_file
from .settings import ENV_CACHE, ENV_DATA, ENV_SHIFT_IMAGES, SOURCE_LANGUAGE

if TYPE_CHECKING:
    from .schema import StudyConfig
    from .study import Study

STAMPS = "posts"  # under the cache root
PRECOMPUTED = "precompute"  # under the cache root: the studies whose analysis cache is full
CHECKED = "preflight"  # under the cache root: the studies (and prose) that passed the checks before any work
PAGES = "pages"  # under the cache root: the generated pages other than posts ("Write your own study", Methods)
PACKAGE = Path(__file__).resolve().parent
# The libraries whose versions can change a figure's pixels or a number in a post.
LIBRARIES = ("matplotlib", "numpy", "scipy", "scikit-learn", "torch", "jinja2", "captum", "onnx")


def inputs(study: Study, exp: StudyConfig, profile: str, declared: dict[str, str], prose_file: Path | None,
           results: Path | None = None, reads: dict[str, StudyConfig] | None = None, answers: bool = True) -> str:
    """The key of everything the post of ``study`` (collected, so its runs are checked) is rendered from; with
    ``results`` (the store's root) also every complete run under the study's own folder (its exercises' runs) and
    under the folders of the studies its prose ``reads`` (id -> config), with their configs, and whether the exercises' answers are shown."""
    runs = [[v.name, v.unavailable, [[str(run.path), _marker(run.path)] for run in v.runs]] for v in study.variants]
    data = {
        "answers": answers,
        "tree": _markers(results, [study.id, *(reads or {})]) if results is not None else None,
        "reads": {sid: other.model_dump(mode="json") for sid, other in (reads or {}).items()},
        "reportgen": __version__, "code": package_code(), "libraries": libraries(), "profile": profile,
        "study": exp.model_dump(mode="json"), "declared": declared, "runs": runs,
        "prose": sha256_file(prose_file) if prose_file is not None and prose_file.is_file() else None,
        "data": data_files(), "shift_images": os.environ.get(ENV_SHIFT_IMAGES),
    }
    if i18n.current() != SOURCE_LANGUAGE:  # another edition's post (English keys unchanged)
        data["language"] = i18n.current()
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def fresh(exp_id: str, key: str, post_dir: Path) -> bool:
    """Did the last render of ``exp_id`` have the inputs ``key``, and are its post and figures still as written?"""
    try:
        stamp = json.loads(_stamp_path(exp_id).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(stamp, dict) and stamp.get("inputs") == key and stamp.get("outputs") == _outputs(post_dir,
                                                                                                           exp_id)


def record(exp_id: str, key: str, post_dir: Path) -> None:
    """Remember that the post of ``exp_id`` now on disk was rendered from the inputs ``key``."""
    stamp = {"inputs": key, "outputs": _outputs(post_dir, exp_id)}
    try:
        atomic_write(_stamp_path(exp_id), (json.dumps(stamp, indent=1, sort_keys=True) + "\n").encode())
    except OSError:
        pass  # a read-only cache only costs the next render its time


def forget(exp_id: str) -> None:
    """The post of ``exp_id`` was removed or failed: the next render renders it."""
    _stamp_path(exp_id).unlink(missing_ok=True)


def _stamp_path(exp_id: str, kind: str = STAMPS) -> Path:
    lang = i18n.current()  # each edition has its own stamps: .cache/posts/pt/<id>.json
    folder = Path(os.environ.get(ENV_CACHE) or ".cache") / kind
    return (folder if lang == SOURCE_LANGUAGE else folder / lang) / f"{exp_id}.json"


def precompute_key(exp_id: str, exp: StudyConfig, profile: str, results: Path) -> str:
    """The key of everything the analysis cache of a study is filled from (``reportgen run``'s last step): its
    config, the profile, every complete run under its results folder, the package's code, the libraries, the data
    and the environment that changes an analysis."""
    data = {"study": exp.model_dump(mode="json"), "profile": profile, "tree": _markers(results, [exp_id]),
            "reportgen": __version__, "code": package_code(), "libraries": libraries(), "data": data_files(),
            "shift_images": os.environ.get(ENV_SHIFT_IMAGES)}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def preflight_key(exp_id: str, exp: StudyConfig, profile: str, prose_file: Path | None, studies: list[str],
                  reads: dict[str, StudyConfig], translations: tuple[Path, ...] = ()) -> str:
    """The key of everything :func:`reportgen.pipeline.preflight` checks a study against: its config, the profile,
    its prose and its translations (paths and bytes), the ids of every declared study and the configs of those its prose reads, the
    package's code, the libraries and the language of the edition."""
    data = {"study": exp.model_dump(mode="json"), "profile": profile, "studies": sorted(studies),
            "reads": {sid: other.model_dump(mode="json") for sid, other in reads.items()},
            "prose": [str(prose_file), sha256_file(prose_file)] if prose_file is not None and prose_file.is_file()
            else None, "reportgen": __version__, "code": package_code(), "libraries": libraries(),
            "language": i18n.current(),
            "translations": [[str(f), sha256_file(f)] for f in translations if f.is_file()]}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def page_key(inputs: Any, target: Path) -> str | None:
    """The key of a generated page written from ``inputs`` by the package's code into ``target`` as it is now
    (None: there is no such file yet)."""
    if not target.is_file():
        return None
    data = {"inputs": inputs, "reportgen": __version__, "code": package_code(), "libraries": libraries(),
            "language": i18n.current(), "target": [str(target), sha256_file(target)]}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def seen(kind: str, exp_id: str, key: str) -> bool:
    """Was the step ``kind`` (:data:`PRECOMPUTED`, :data:`CHECKED`) of ``exp_id`` done from the inputs ``key``?
    (Then it has nothing to do.)"""
    try:
        return json.loads(_stamp_path(exp_id, kind).read_text()).get("inputs") == key
    except (OSError, ValueError, AttributeError):
        return False


def remember(kind: str, exp_id: str, key: str) -> None:
    """Remember that the step ``kind`` of ``exp_id`` was done from the inputs ``key``."""
    try:
        atomic_write(_stamp_path(exp_id, kind), (json.dumps({"inputs": key}) + "\n").encode())
    except OSError:
        pass  # a read-only cache only costs the next command the step again


def _outputs(post_dir: Path, exp_id: str) -> dict[str, str] | None:
    """The SHA-256 of the post and of every file of its figure folder (None: no post)."""
    post = post_dir / f"{exp_id}.md"
    if not post.is_file():
        return None
    found = {post.name: sha256_file(post)}
    folder = post_dir / exp_id
    if folder.is_dir():
        found.update({f"{exp_id}/{p.relative_to(folder).as_posix()}": sha256_file(p)
                      for p in sorted(folder.rglob("*")) if p.is_file()})
    return found


def _markers(results: Path, study_ids: list[str]) -> list[list[str]]:
    """The SHA-256 of every completion marker under the studies' result folders (each marker names its files'
    digests, so it stands for the whole run)."""
    from .store import MARKER
    return [[p.relative_to(results).as_posix(), sha256_file(p)] for sid in study_ids
            for p in sorted((results / sid).rglob(MARKER)) if (results / sid).is_dir()]


def _marker(run_dir: Path) -> Any:
    """A run's completion marker (its cache key and the SHA-256 of every file): what the run is."""
    from .store import MARKER
    return json.loads((run_dir / MARKER).read_text())


@cache
def package_code() -> str:
    """The SHA-256 of every file of the package (code, templates, partials, reference data)."""
    h = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            h.update(f"{path.relative_to(PACKAGE).as_posix()}\0".encode())
            h.update(path.read_bytes())
    return h.hexdigest()


@cache
def libraries() -> dict[str, str]:
    found = {"python": sys.version.split()[0]}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "absent"
    return found


def data_files() -> list[list[Any]]:
    """Every file under the data root (``$REPORTGEN_DATA`` or ``data/``, as :func:`reportgen.data.data_root`) with
    its size and modification time: the images the data posts and the analyses show come from there."""
    root = Path(os.environ.get(ENV_DATA) or "data")
    if not root.is_dir():
        return []
    return [[p.relative_to(root).as_posix(), p.stat().st_size, p.stat().st_mtime_ns]
            for p in sorted(root.rglob("*")) if p.is_file() and not p.name.startswith(".")]
