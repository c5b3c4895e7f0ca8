"""The Gradio Space: launched on 127.0.0.1, called through `gradio_client` with a real photo; and (slow) a headless
Chromium screenshot of the page showing a caption."""

from __future__ import annotations

import importlib.util
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from model_card.generator import HANDLER_PATH

APP_PATH = HANDLER_PATH.parent / "space" / "app.py"


def _load_app():
    spec = importlib.util.spec_from_file_location("space_app", APP_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def launched(memorised_model_dir, memorised):
    """(url, app module) of the demo serving the memorised model, with the first photo as the opening example."""
    app = _load_app()
    model, processor = app.load_model(str(memorised_model_dir))
    demo = app.build_demo(model, processor, example_image=str(memorised[0]["path"]))
    port = _free_port()
    demo.launch(
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        quiet=True,
        allowed_paths=[str(Path(memorised[0]["path"]).parent)],
    )
    try:
        yield f"http://127.0.0.1:{port}/", app
    finally:
        demo.close()


def test_caption_through_gradio_client(launched, memorised):
    from gradio_client import Client, handle_file

    url, _ = launched
    client = Client(url, verbose=False)
    assert "/caption" in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    for row, beams in zip(memorised, (3, 1), strict=True):
        caption, figure = client.predict(handle_file(str(row["path"])), beams, 20, api_name="/caption")
        assert caption == row["caption"]
        with Image.open(figure) as image:  # one panel per word, 4 per row
            rows = -(-len(row["caption"].split()) // 4)
            assert image.width > 600 and image.height > 100 * rows
    short, _ = client.predict(handle_file(str(memorised[0]["path"])), 3, 5, api_name="/caption")
    assert short == " ".join(memorised[0]["caption"].split()[:5])


def test_app_requires_model_id(monkeypatch):
    monkeypatch.delenv("MODEL_ID", raising=False)
    with pytest.raises(SystemExit, match="Set MODEL_ID"):
        _load_app().main()


@pytest.mark.slow
def test_chromium_screenshot_shows_caption(launched, memorised, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if chromium is None:
        pytest.fail("Chromium is not installed (apt-get install -y chromium)")
    url, _ = launched
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium'}",
        "--virtual-time-budget=8000",
    ]
    screenshot = tmp_path / "space.png"
    subprocess.run(
        [chromium, *flags, "--window-size=1280,1000", f"--screenshot={screenshot}", url],
        capture_output=True,
        timeout=120,
        check=True,
    )
    dom = subprocess.run([chromium, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    assert memorised[0]["caption"] in dom and 'id="caption"' in dom
    with Image.open(screenshot) as image:
        assert image.size == (1280, 1000)
        colours = image.convert("RGB").resize((64, 50)).getcolors(64 * 50)
        assert colours is not None and len(colours) > 200  # photo and attention figure rendered, not a blank page
