"""The live model, end to end on synthetic data: a study of four variants trained for real (one of them made
unexportable with an operator ONNX lacks), built into a site with ``reportgen build`` (MkDocs, and Zensical when it
is installed), served under a sub-path by a local HTTP server and driven in headless Chromium. The page's
predictions are held to PyTorch's, computed here from the stored weights (safetensors) and training's
preprocessing: the same class on every input, every probability within 1e-4. Also: the unexportable variant is left out with a note while the build passes, a browser without
WebAssembly and a page opened from disk get their one sentence, and the runtime plus the shipped studies' models fit
the 20 MiB budget."""
from __future__ import annotations

import base64
import copy
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from reportgen.analyses import live_model
from reportgen.analyses._shift import shift_images
from reportgen.engines import DEFAULT_ENGINE, ENGINES
from reportgen.loader import Normalization, to_input
from reportgen.site import ONNXRUNTIME_WEB, vendor_npm
from tests.conftest import ROOT, copy_project, copy_site_sources, invoke

STUDY = """\
id: live
title: Live model
description: four small networks for the live model test
question: Does the page compute what PyTorch computes?
dataset: fashion-mnist
model: {name: lenet}
training: {epochs: 1, batch_size: 64, lr: 0.003}
profiles:
  smoke: {seeds: [2], train_limit: 600}
variants:
  - {name: lenet, label: LeNet}
  - {name: bn, label: LeNet with batch norm, model: {options: {batch_norm: true}}}
  - {name: fc, label: Fully connected, model: {name: fcnn, options: {hidden: [32]}}}
  - {name: broken, label: Unexportable LeNet}
analyses: [samples, live_model]
"""
EXPORTED = ["lenet", "bn", "fc"]        # in the widget, in the study's order
SUB_PATH = "sub/path/"                  # the site is served from here, as on GitHub Pages
POST = "blog/live/"
TOLERANCE = 1e-4
# (test image, dx, dy, mode): 24 inputs, 16 of them shifted, both modes, up to the sliders' limits
CASES = [(i, 0, 0, "zero") for i in range(0, 50, 6)] + [
    (1, 2, 0, "zero"), (3, -3, 1, "zero"), (5, 0, -4, "zero"), (7, 6, 6, "zero"), (11, -6, -6, "zero"),
    (13, 1, -1, "zero"), (17, -2, 5, "zero"), (19, 4, 4, "zero"), (23, 3, 0, "wrap"), (29, -5, 2, "wrap"),
    (31, 0, 6, "wrap"), (37, -6, -6, "wrap"), (41, 2, -3, "wrap"), (43, 6, 1, "wrap"), (47, -1, -1, "wrap"),
    (49, 5, -5, "wrap")]


class _I0(nn.Module):
    """The modified Bessel function I0: an operator ONNX lacks."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.special.i0(x)


def _with_i0(model: nn.Module) -> nn.Module:
    """A copy of a trained network whose logits pass through I0 at the end of its classifier."""
    model = copy.deepcopy(model)
    model.classifier.add_module("i0", _I0())
    return model


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The study above run with the real CLI, in a project with the hand-written docs, the vendored packages and
    synthetic Fashion-MNIST; for the rest of this module the variant ``broken`` cannot be exported."""
    from reportgen.provision import provision
    from tests.synthetic import write_idx_dataset
    root = tmp_path_factory.mktemp("live")
    project = root / "project"
    mp = pytest.MonkeyPatch()
    try:
        write_idx_dataset(root / "idx", n_train=600, n_test=200)
        for name, value in (("REPORTGEN_DATA", root / "data"), ("REPORTGEN_CACHE", root / "cache"),
                            ("REPORTGEN_SKIP_CHECKSUM", "1"), ("REPORTGEN_OFFLINE", "1")):
            mp.setenv(name, str(value))
        mp.delenv("REPORTGEN_RESULTS", raising=False)
        provision("fashion-mnist", root / "data", from_dir=root / "idx", skip_checksum=True, allow_download=False,
                  allow_install=False, log=lambda *_: None)
        copy_site_sources(project)
        (project / "experiments").mkdir()
        (project / "experiments" / "live.yaml").write_text(STUDY)
        mp.chdir(project)
        real = live_model.load_network
        mp.setattr(live_model, "load_network",
                   lambda run, *a, **k: _with_i0(real(run)) if run.path.parent.name == "broken" else real(run))
        result = invoke("run", "live", "--profile", "smoke")
        assert result.exit_code == 0, result.output
        yield project
    finally:
        mp.undo()


@pytest.fixture(scope="module", params=ENGINES)
def built(request, trained, tmp_path_factory):
    """A copy of the trained project built with ``reportgen build --engine <engine>``: MkDocs, then Zensical."""
    import importlib.util
    engine = request.param
    if engine != DEFAULT_ENGINE and importlib.util.find_spec(engine) is None:
        pytest.skip(f"{engine} is not installed")
    project = tmp_path_factory.mktemp(f"built-{engine}") / "project"
    copy_project(trained, project)
    mp = pytest.MonkeyPatch()
    try:
        mp.chdir(project)
        result = invoke("build", "live", "--profile", "smoke", "--engine", engine)
        assert result.exit_code == 0, result.output
        yield project
    finally:
        mp.undo()


def _pytorch(project: Path, variant: str, pixels: np.ndarray) -> np.ndarray:
    """PyTorch's class probabilities for uint8 images [N, 28, 28], from the run's stored weights and config."""
    from safetensors.torch import load_file

    from reportgen.models import build_model
    run = project / "results" / "live" / variant / "seed-2"
    config = json.loads((run / "config.json").read_text())
    model = build_model(config["model"]["name"], **config["model"]["options"])
    model.load_state_dict(load_file(str(run / "weights.safetensors")))
    norm = Normalization(**json.loads((run / "metrics.json").read_text())["normalization"])
    with torch.inference_mode():
        return torch.softmax(model.eval()(to_input(torch.from_numpy(pixels), norm)), 1).numpy()


def _linked(project: Path, suffix: str) -> list[Path]:
    """The files the built post links whose names end with ``suffix``, where the site holds them."""
    page = project / "site" / POST / "index.html"
    hrefs = re.findall(r'href="([^"#]+)"', page.read_text())
    return [(page.parent / href).resolve() for href in hrefs if href.endswith(suffix)]


def _manifest(project: Path) -> dict:
    (manifest,) = _linked(project, ".json")
    return json.loads(manifest.read_text())


# ---- the build ----------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_an_unexportable_variant_is_left_out_with_a_note_and_the_build_passes(built):
    post = (built / "docs" / "blog" / "posts" / "live.md").read_text()
    assert '!!! warning "Unexportable LeNet is not in the live model"' in post
    assert "could not be exported to ONNX" in post and "aten::i0" in post
    manifest = _manifest(built)
    assert [v["name"] for v in manifest["variants"]] == EXPORTED
    models = _linked(built, ".onnx")
    assert [p.name for p in models] == [f"{n}.onnx" for n in EXPORTED] and all(p.is_file() for p in models)
    assert not list((built / "site").rglob("broken.onnx"))
    page = (built / "site" / POST / "index.html").read_text()
    assert "Unexportable LeNet is not in the live model" in page and 'class="live-model"' in page


@pytest.mark.slow
def test_the_manifest_ships_test_images_and_each_runs_own_normalisation(built):
    from reportgen.data import load_splits
    manifest = _manifest(built)
    splits = load_splits("fashion-mnist")
    labels = splits.test_labels.numpy()
    expected = [int(i) for c in range(10) for i in np.flatnonzero(labels == c)[:live_model.IMAGES_PER_CLASS]]
    assert manifest["images"]["indices"] == expected and len(expected) == 50
    assert manifest["images"]["labels"] == labels[expected].tolist()
    pixels = np.frombuffer(base64.b64decode(manifest["images"]["pixels"]), dtype=np.uint8).reshape(-1, 28, 28)
    assert np.array_equal(pixels, splits.test_images[expected].numpy())
    for v in manifest["variants"]:
        metrics = json.loads((built / "results" / "live" / v["name"] / "seed-2" / "metrics.json").read_text())
        assert v["normalization"] == metrics["normalization"] and v["seed"] == 2
    shapes = {v["name"]: [m["shape"] for m in v["maps"]] for v in manifest["variants"]}
    assert shapes == {"lenet": [[6, 28, 28], [16, 10, 10]], "bn": [[6, 28, 28], [16, 10, 10]], "fc": []}


def test_the_runtime_and_each_shipped_posts_networks_fit_the_budget():
    """What a reader's browser fetches for one page: onnxruntime-web as vendored plus the post's networks, its
    exercises' included (the full profile runs them), at most 20 MiB. An exported size depends on the architecture
    only, so freshly initialised networks stand in for trained ones."""
    from reportgen.config import load_study
    from reportgen.models import build_model
    runtime = vendor_npm(ROOT / "docs", ONNXRUNTIME_WEB)
    runtime_bytes = sum(p.stat().st_size for p in runtime.rglob("*") if p.is_file())
    studies = [load_study(p) for p in sorted((ROOT / "experiments").glob("*.yaml")) if "." not in p.stem]
    studies = [s for s in studies if "live_model" in s.analyses]
    assert studies, "no shipped study declares live_model"
    check = torch.randint(0, 256, (2, 28, 28), dtype=torch.uint8)
    pages = {}
    for exp in studies:
        seed = exp.profile("quick").seeds[0]
        pages[exp.id] = runtime_bytes
        for v in [*exp.variants, *(e.as_variant() for e in exp.exercises)]:
            spec = exp.resolve(v, seed, "quick")["model"]
            data, _, _ = live_model.export_onnx(build_model(spec["name"], **spec["options"]).eval(),
                                                Normalization(0.5, 0.25), check)
            pages[exp.id] += len(data)
    assert any(len(exp.exercises) for exp in studies)  # the exercises' networks are counted
    assert max(pages.values()) <= 20 * 2**20, {k: f"{v / 2**20:.1f} MiB" for k, v in pages.items()}


@pytest.mark.slow
def test_networks_export_after_other_analyses_loaded_them_in_inference_mode(trained, tmp_path):
    """The analyses share a model cache, and a model first built inside ``torch.inference_mode`` has parameters
    that tracing refuses: the export must not depend on who loaded the network first."""
    from reportgen.analyses._common import load_model
    from reportgen.config import load_study
    from reportgen.figures import FigureWriter
    from reportgen.store import Store
    from reportgen.study import collect
    study = collect("live", load_study(trained / "experiments" / "live.yaml"), "smoke", Store(trained / "results"))
    with torch.inference_mode():
        for v in study.available:
            load_model(v.runs[0])
    result = live_model.compute(study, FigureWriter(directory=tmp_path, link_prefix="post", cache_dir=None))
    assert [v.name for g in result.groups for v in g.variants] == EXPORTED
    assert [l.name for g in result.groups for l in g.left_out] == ["broken"]
    assert result.exercises == []  # this study has no exercise


# ---- the page in a browser ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def served(built, tmp_path_factory):
    """The built site served under /sub/path/ by a local HTTP server; yields its base URL."""
    from tests.browser import _serve
    top = tmp_path_factory.mktemp("served")
    (top / SUB_PATH).parent.mkdir(parents=True)
    (top / SUB_PATH.rstrip("/")).symlink_to(built / "site", target_is_directory=True)
    server, base = _serve(top)
    yield base + SUB_PATH
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """One headless Chromium for the module's page tests (starting one costs more than most tests): each test
    opens its page itself, and a test that changes the browser undoes it."""
    from tests.browser import _driver, find_browser
    found = find_browser()
    if found is None:
        pytest.skip("chromium and chromedriver are needed (apt-get install chromium chromium-driver)")
    driver = _driver(*found, str(tmp_path_factory.mktemp("profile")))
    yield driver
    driver.quit()


def _wait(driver, script: str, what: str, timeout: float = 60) -> None:
    from tests.browser import _wait as wait
    if not wait(driver, script, timeout):
        state = driver.execute_script(f"var r = {ROOT_JS}; return r && r.outerHTML.slice(0, 400);")
        raise AssertionError(f"timed out waiting for {what}; widget: {state}")


ROOT_JS = "document.querySelector('.live-model')"
SETTLED = f"{ROOT_JS}.dataset.shown && {ROOT_JS}.dataset.shown === {ROOT_JS}.dataset.wanted"


def _set(driver, image: int, dx: int, dy: int, mode: str) -> str:
    """Drive the widget as a reader does: click the test image, move both sliders, pick the mode. Returns the
    input's name the widget shows once it has run every network on it."""
    root = driver.find_element("css selector", ".live-model")
    root.find_element("css selector", f'.live-model__thumb[data-index="{image}"]').click()
    for name, value in (("dx", dx), ("dy", dy)):
        driver.execute_script("var s = arguments[0]; s.value = arguments[1];"
                              "s.dispatchEvent(new Event('input', {bubbles: true}));",
                              root.find_element("css selector", f'input[name="{name}"]'), str(value))
    root.find_element("css selector", f'input[type="radio"][value="{mode}"]').click()
    return f"image:{image}|{dx}|{dy}|{mode}"


def _shown(driver) -> tuple[str, np.ndarray, dict[str, np.ndarray]]:
    """What the widget shows: its input's name, the pixels it fed the networks, every column's probabilities."""
    shown, pixels, columns = driver.execute_script(
        f"var r = {ROOT_JS}; return [r.dataset.shown, r.dataset.pixels, Array.from("
        "r.querySelectorAll('.live-model__column')).map(c => [c.dataset.variant, c.dataset.probabilities])];")
    image = np.frombuffer(base64.b64decode(pixels), dtype=np.uint8).reshape(1, 28, 28).copy()
    return shown, image, {name: np.array(json.loads(p)) for name, p in columns}


@pytest.mark.slow
def test_the_page_predicts_what_pytorch_predicts_under_a_sub_path(built, served, browser, request):
    # The page runs the same JavaScript and ONNX files whichever engine built it: the default engine's site is
    # checked on every case, the other's on a spread of them (zero-filled and wrapped, both signs of dx and dy).
    cases = CASES if request.node.callspec.params["built"] == DEFAULT_ENGINE else CASES[::4]
    browser.get(served + POST)
    _wait(browser, f"{ROOT_JS}.dataset.state === 'ready'", "the first prediction")
    ready_ms = int(browser.execute_script(f"return {ROOT_JS}.dataset.readyMs;"))
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name);")
    assert all(url.startswith(served) for url in resources), [u for u in resources if not u.startswith(served)]
    assert any(url.endswith("ort-wasm-simd-threaded.wasm") for url in resources)
    titles = browser.execute_script(f"return Array.from({ROOT_JS}.querySelectorAll('.live-model__column'))"
                                    ".map(c => c.innerText);")
    assert len(titles) == len(EXPORTED) and all("seed 2" in t for t in titles), titles
    maps = browser.execute_script(f"return Array.from({ROOT_JS}.querySelectorAll('.live-model__layer'))"
                                  ".map(l => [l.dataset.layer, l.querySelectorAll('canvas').length]);")
    assert maps == [["conv1", 6], ["conv2", 16]]

    manifest = _manifest(built)
    images = np.frombuffer(base64.b64decode(manifest["images"]["pixels"]), dtype=np.uint8).reshape(-1, 28, 28).copy()
    predicted_same = 0
    for image, dx, dy, mode in cases:
        key = _set(browser, image, dx, dy, mode)
        _wait(browser, f"{SETTLED} && {ROOT_JS}.dataset.shown === {json.dumps(key)}", key)
        shown, pixels, columns = _shown(browser)
        expected_pixels = shift_images(torch.from_numpy(images[image:image + 1]), dx, dy, mode).numpy()
        assert np.array_equal(pixels, expected_pixels), f"{key}: the page shifted the image differently"
        assert list(columns) == EXPORTED
        for name, probs in columns.items():
            reference = _pytorch(built, name, expected_pixels)[0]
            assert probs.argmax() == reference.argmax(), (key, name, probs, reference)
            assert np.abs(probs - reference).max() <= TOLERANCE, (key, name, np.abs(probs - reference).max())
            predicted_same += 1
    assert predicted_same == len(cases) * len(EXPORTED) and len(cases) >= (20 if cases is CASES else 6)

    # a drawing, shifted: the pixels the page fed are the networks' input, whatever the pen did
    pad = browser.find_element("css selector", ".live-model__draw")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", pad)
    from selenium.webdriver.common.action_chains import ActionChains
    ActionChains(browser).move_to_element_with_offset(pad, -40, -60).click_and_hold().move_by_offset(30, 50) \
        .move_by_offset(40, 20).move_by_offset(-10, 50).release().perform()
    slider = browser.find_element("css selector", '.live-model input[name="dx"]')
    browser.execute_script("arguments[0].value = '-2'; arguments[0].dispatchEvent(new Event('input'));", slider)
    _wait(browser, f"{SETTLED} && {ROOT_JS}.dataset.shown.startsWith('drawing:')", "the drawing's prediction")
    shown, pixels, columns = _shown(browser)
    _, _, dy, mode = cases[-1]
    assert shown.endswith(f"|-2|{dy}|{mode}") and pixels.sum() > 0, shown
    for name, probs in columns.items():
        reference = _pytorch(built, name, pixels)[0]
        assert probs.argmax() == reference.argmax() and np.abs(probs - reference).max() <= TOLERANCE, (name, shown)
    print(f"live model: first prediction on screen {ready_ms} ms after navigation start")


@pytest.mark.slow
def test_the_portuguese_page_speaks_portuguese_and_predicts_what_pytorch_predicts(built, served, browser):
    browser.get(served + "pt/" + POST)
    assert browser.execute_script("return document.documentElement.lang;") == "pt-BR"
    _wait(browser, f"{ROOT_JS}.dataset.state === 'ready'", "the first prediction in the Portuguese edition")
    titles = browser.execute_script(f"return Array.from({ROOT_JS}.querySelectorAll('.live-model__column'))"
                                    ".map(c => c.innerText);")
    assert len(titles) == len(EXPORTED) and all("semente 2" in t and "seed" not in t for t in titles), titles
    manifest = _manifest(built)
    images = np.frombuffer(base64.b64decode(manifest["images"]["pixels"]), dtype=np.uint8).reshape(-1, 28, 28).copy()
    for image, dx, dy, mode in CASES[-3:]:  # shifted, wrapped: the same networks as the English page
        key = _set(browser, image, dx, dy, mode)
        _wait(browser, f"{SETTLED} && {ROOT_JS}.dataset.shown === {json.dumps(key)}", key)
        _, pixels, columns = _shown(browser)
        assert np.array_equal(pixels, shift_images(torch.from_numpy(images[image:image + 1]), dx, dy, mode).numpy())
        for name, probs in columns.items():
            reference = _pytorch(built, name, pixels)[0]
            assert probs.argmax() == reference.argmax() and np.abs(probs - reference).max() <= TOLERANCE, (key, name)


@pytest.mark.slow
def test_without_webassembly_the_page_says_why_and_keeps_its_figures(served, browser):
    script = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                                     {"source": "delete window.WebAssembly;"})
    try:
        _check_the_page_without_webassembly(served, browser)
    finally:  # the next test's pages have WebAssembly again
        browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": script["identifier"]})


def _check_the_page_without_webassembly(served: str, browser) -> None:
    browser.get(served + POST)
    _wait(browser, f"{ROOT_JS}.dataset.state === 'no-webassembly'", "the no-WebAssembly sentence")
    message = browser.find_element("css selector", '.live-model__message[data-reason="no-webassembly"]')
    assert message.is_displayed() and "does not run WebAssembly" in message.text
    assert not any(m.is_displayed() for m in browser.find_elements("css selector", ".live-model__message")
                   if m.get_attribute("data-reason") != "no-webassembly")
    _wait(browser, "Array.from(document.images).every(i => i.complete)", "the figures")
    figures = browser.execute_script("return Array.from(document.querySelectorAll('article img'))"
                                     ".map(i => [i.src, i.naturalWidth]);")
    assert figures and all(width > 0 for _, width in figures), figures
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name);")
    assert not [u for u in resources if "onnxruntime-web" in u or "/live-model/" in u], resources


@pytest.mark.slow
def test_a_page_opened_from_disk_says_to_serve_the_site(built, browser):
    browser.get((built / "site" / POST / "index.html").as_uri())
    _wait(browser, f"{ROOT_JS}.dataset.state === 'file'", "the file:// sentence")
    message = browser.find_element("css selector", '.live-model__message[data-reason="file"]')
    assert message.is_displayed() and "python -m http.server" in message.text


@pytest.mark.slow
@pytest.mark.parametrize("built", ["zensical"], indirect=True)  # MkDocs's site with live models: tests/test_e2e.py
def test_the_site_with_a_live_model_loads_nothing_from_another_host(built, tmp_path):
    from tests.browser import BrowserUnavailable, check_site_in_browser
    try:
        report = check_site_in_browser(built / "site", tmp_path / "artifacts")
    except BrowserUnavailable as exc:
        pytest.skip(str(exc))
    assert POST in report["pages"] and report["problems"] == [], report["problems"]
