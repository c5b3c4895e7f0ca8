"""The static browser captioner (model_card/web/) in a real headless Chromium, against the Python model.

Needs the Debian `chromium` package and `npm ci --prefix model_card/web` (onnxruntime-web from the npm registry);
without them the test is skipped, unless SAT_REQUIRE_BROWSER=1 (CI) turns the skip into a failure. The page is
served from localhost and every request elsewhere is refused, so it runs with no server-side code and no internet.
The screenshot is saved under pytest's tmp dir (path printed) and, when SAT_SCREENSHOT_DIR is set, copied there.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from model_card.web_space import ORT_FILES, WEB_DIR, build_web_space, ort_cdn_base
from show_attend_tell import ShowAttendTellForConditionalGeneration, ShowAttendTellProcessor, build_image_processor
from show_attend_tell.onnx_export import export_onnx
from show_attend_tell.processing_show_attend_tell import load_image
from tests.conftest import read_metadata

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ORT_DIST = WEB_DIR / "node_modules" / "onnxruntime-web" / "dist"


def _require_browser() -> None:
    missing = []
    if CHROMIUM is None:
        missing.append("the chromium executable (apt-get install chromium)")
    if not all((ORT_DIST / name).is_file() for name in ORT_FILES):
        missing.append(f"{ORT_DIST} (npm ci --prefix {WEB_DIR})")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install -e '.[onnx]')")
    if missing:
        message = "browser test needs " + " and ".join(missing)
        if os.environ.get("SAT_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:
        pass


@contextlib.contextmanager
def serve(directory: Path):
    """Serve `directory` on a free localhost port; yields the base URL."""
    handler = functools.partial(QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def python_greedy(folder: Path, photo: Path) -> str:
    model = ShowAttendTellForConditionalGeneration.from_pretrained(folder).eval()
    processor = ShowAttendTellProcessor.from_pretrained(folder)
    with torch.inference_mode():
        sequences = model.generate(processor(images=[photo])["pixel_values"], num_beams=1)
    return processor.batch_decode(sequences)[0]


@pytest.mark.slow
def test_page_captions_in_chromium(tmp_path, memorised_model_dir, memorised, coco_mini):
    _require_browser()
    from playwright.sync_api import sync_playwright

    folder = tmp_path / "model"
    shutil.copytree(memorised_model_dir, folder)
    export_onnx(folder, verify_images=[row["path"] for row in memorised])
    site = build_web_space(folder, tmp_path / "site", model_id="OWNER/sat", ort_dist=ORT_DIST)
    assert ort_cdn_base() not in (site / "index.html").read_text()  # the vendored copy, nothing from the CDN
    assert "sdk: static" in (site / "README.md").read_text() and "OWNER/sat" in (site / "README.md").read_text()
    photos = [row["path"] for row in memorised] + [row["path"] for row in read_metadata(coco_mini / "test")[:2]]
    (site / "photos").mkdir()
    for photo in photos:
        shutil.copy2(photo, site / "photos" / photo.name)

    with serve(site) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1000, "height": 900})
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(url) else route.abort())
        page.goto(url + "/index.html")
        page.wait_for_function("document.body.dataset.state === 'ready'", timeout=180_000)
        for index, photo in enumerate(photos):
            page.evaluate("document.body.dataset.state = 'ready'")
            page.set_input_files("#file", str(photo))
            page.wait_for_function("document.body.dataset.state === 'captioned'", timeout=180_000)
            shown = page.inner_text("#caption").strip()
            expected = python_greedy(folder, photo)
            assert " ".join(shown.split()) == expected, photo.name
            if index < len(memorised):
                assert expected == memorised[index]["caption"]  # a real caption, not noise
            pixels = np.asarray(page.evaluate("Array.from(window.satLast.pixels)"), dtype=np.float32)
            reference = ShowAttendTellProcessor.from_pretrained(folder)(images=[photo])["pixel_values"].numpy()
            assert np.abs(pixels - reference.ravel()).max() < 1e-5, photo.name
            if index == 0:
                panels = page.locator("canvas.panel")
                assert panels.count() == len(expected.split())
                assert all(panels.nth(i).get_attribute("data-overlay") == "drawn" for i in range(panels.count()))
                # The overlay darkens the photo where attention is low: the panel differs from the bare photo.
                darkening = page.evaluate(
                    """() => {
                        const panel = document.querySelector('canvas.panel');
                        const bare = document.createElement('canvas');
                        bare.width = panel.width; bare.height = panel.height;
                        const photo = document.getElementById('photo');
                        bare.getContext('2d').drawImage(photo, 0, 0, bare.width, bare.height);
                        const a = panel.getContext('2d').getImageData(0, 0, panel.width, panel.height).data;
                        const b = bare.getContext('2d').getImageData(0, 0, bare.width, bare.height).data;
                        let darker = 0;
                        for (let i = 0; i < a.length; i += 4)
                            darker += (b[i] + b[i+1] + b[i+2] - a[i] - a[i+1] - a[i+2]) / 3;
                        return darker / (a.length / 4);
                    }"""
                )
                assert darkening > 5.0  # mean darkening, in 8-bit levels
                page.hover("#caption span >> nth=0")
                assert page.get_attribute("#photo", "data-overlay") == "drawn"
                screenshot = tmp_path / "web_page.png"
                page.screenshot(path=str(screenshot), full_page=True)
                print(f"screenshot: {screenshot}")
                if os.environ.get("SAT_SCREENSHOT_DIR"):
                    shutil.copy2(screenshot, Path(os.environ["SAT_SCREENSHOT_DIR"]) / "web_page.png")
        # The JavaScript preprocessing at the default 256 px size, against the processor, on the same real photos.
        for photo in photos:
            pixels = page.evaluate(
                """async (url) => {
                    const { bitmap, rgba } = await decode(await (await fetch(url)).blob());
                    const saved = config.image;
                    config.image = { ...saved, height: 256, width: 256, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };
                    try { return Array.from(preprocess(rgba, bitmap.width, bitmap.height)); }
                    finally { config.image = saved; }
                }""",
                f"{url}/photos/{photo.name}",
            )
            processor = build_image_processor("resnet10t", 256)
            reference = processor([load_image(photo)], image_mean=[0.5] * 3, image_std=[0.5] * 3, return_tensors="pt")
            diff = np.abs(np.asarray(pixels, dtype=np.float32) - reference["pixel_values"].numpy().ravel())
            assert diff.max() < 1e-5, (photo.name, float(diff.max()))
        browser.close()
    assert not errors, errors


def test_build_web_space_names_what_is_missing(tmp_path, tiny_model_dir):
    with pytest.raises(ValueError, match="nowhere: model folder not found"):
        build_web_space(tmp_path / "nowhere", tmp_path / "site")
    with pytest.raises(ValueError, match=r"no onnx/encoder_model.onnx, onnx/decoder_model.onnx.*export-onnx"):
        build_web_space(tiny_model_dir, tmp_path / "site")
    folder = tmp_path / "model"
    (folder / "onnx").mkdir(parents=True)
    for name in ("encoder_model.onnx", "decoder_model.onnx", "captioner.json"):
        (folder / "onnx" / name).write_text("x")
    with pytest.raises(ValueError, match=r"ort_dist .*empty: no ort.wasm.min.js"):
        build_web_space(folder, tmp_path / "site", ort_dist=tmp_path / "empty")
    site = build_web_space(folder, tmp_path / "site2")  # without ort_dist the page loads onnxruntime-web from jsDelivr
    assert ort_cdn_base() in (site / "index.html").read_text()
    assert sorted(p.name for p in (site / "onnx").iterdir()) == [
        "captioner.json",
        "decoder_model.onnx",
        "encoder_model.onnx",
    ]
    assert "sdk: static" in (site / "README.md").read_text() and "models:" not in (site / "README.md").read_text()


def test_push_web_space_to_local_hub_standin(tmp_path, monkeypatch):
    from huggingface_hub import constants

    from model_card.web_space import push_web_space
    from tests.model_card.hub_standin import TOKEN, HubStandIn

    folder = tmp_path / "model"
    (folder / "onnx").mkdir(parents=True)
    for name in ("encoder_model.onnx", "decoder_model.onnx", "captioner.json"):
        (folder / "onnx" / name).write_bytes(name.encode())
    with HubStandIn(tmp_path / "hub") as hub:
        monkeypatch.setattr(constants, "ENDPOINT", hub.endpoint)
        url = push_web_space(folder, "standin-user/sat-web", model_id="standin-user/sat", token=TOKEN)
        assert url.startswith(f"{hub.endpoint}/standin-user/sat-web/commit/")
        assert hub.repos["standin-user/sat-web"].get("type") == "space"
        assert hub.repos["standin-user/sat-web"].get("sdk") == "static"
        uploaded = hub.files("standin-user/sat-web", "main")
    assert set(uploaded) == {"README.md", "index.html", "app.js", *(f"onnx/{name}" for name in ("encoder_model.onnx",
                             "decoder_model.onnx", "captioner.json"))}  # fmt: skip
    assert uploaded["onnx/decoder_model.onnx"] == b"decoder_model.onnx"
    assert b"sdk: static" in uploaded["README.md"] and b"standin-user/sat" in uploaded["README.md"]
