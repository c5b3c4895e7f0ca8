"""The Gradio Space: launched on 127.0.0.1, called through `gradio_client` with a real photo; pushed with the model
(`--space`) to a local Hub stand-in; and (slow) built as the Hub builds it from the pushed folder alone, and a headless
Chromium screenshot of the page showing a caption."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest
from huggingface_hub import constants
from PIL import Image

from model_card.generator import HANDLER_PATH
from model_card.gradio_space import build_gradio_space
from model_card.push import push_folder
from tests.conftest import REPO_ROOT
from tests.model_card.hub_standin import TOKEN, HubStandIn

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


SPACE_FILES = {
    "README.md",
    "app.py",
    "requirements.txt",
    "show_attend_tell/__init__.py",
    "show_attend_tell/configuration_show_attend_tell.py",
    "show_attend_tell/pipeline_show_attend_tell.py",
    "show_attend_tell/visualization.py",
}


def test_push_space_uploads_the_gradio_demo_to_local_hub_standin(memorised_model_dir, tmp_path, monkeypatch):
    """`--space`: after the model, the Space gets the app, PyPI-only requirements, a card naming the model, and the
    library modules the app uses, copied from the library."""
    with HubStandIn(tmp_path / "hub") as hub:
        monkeypatch.setattr(constants, "ENDPOINT", hub.endpoint)
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        folder = tmp_path / "sat"
        shutil.copytree(memorised_model_dir, folder)
        push_folder(folder, "standin-user/sat", token=TOKEN, space="standin-user/sat-demo")
        space_files = hub.files("standin-user/sat-demo", "main")
        assert hub.repos["standin-user/sat-demo"]["sdk"] == "gradio"
    assert set(space_files) == SPACE_FILES
    requirements = space_files["requirements.txt"].decode()
    assert "git+" not in requirements and "OWNER" not in requirements and "show-attend-tell" not in requirements
    assert "  - standin-user/sat\n" in space_files["README.md"].decode()
    for name in ("configuration_show_attend_tell.py", "pipeline_show_attend_tell.py", "visualization.py"):
        assert space_files[f"show_attend_tell/{name}"] == (REPO_ROOT / "show_attend_tell" / name).read_bytes()


def _space_python(tmp_path: Path, space: Path) -> Path:
    """A fresh virtual environment that sees this environment's packages through a .pth file (as .ci/run's matrix
    does) but not this project: the Space's requirements.txt must install from them alone (`--no-index`)."""
    env_dir = tmp_path / "space-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", env_dir], check=True, timeout=120)
    python = env_dir / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    (Path(site) / "base.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


@pytest.mark.slow
def test_space_folder_installs_from_its_requirements_and_captions(memorised_model_dir, memorised, tmp_path):
    """The Space as the Hub builds it: `pip install -r requirements.txt` in a fresh environment (local files only),
    then `python app.py` with MODEL_ID a saved model folder, offline; a photo captioned through gradio_client."""
    from gradio_client import Client, handle_file

    space = build_gradio_space(tmp_path / "space", str(memorised_model_dir))
    python = _space_python(tmp_path, space)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"), GRADIO_ANALYTICS_ENABLED="False")
    install = subprocess.run(
        [python, "-m", "pip", "install", "--no-index", "-r", "requirements.txt"],
        cwd=space, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
    where = subprocess.run(
        [python, "-c", "import show_attend_tell; print(show_attend_tell.__file__)"],
        cwd=space, capture_output=True, text=True, env=env, check=True,
    ).stdout.strip()  # fmt: skip
    assert Path(where).resolve().parent == (space / "show_attend_tell").resolve()  # the Space's copy, not the project

    port = _free_port()
    env.update(MODEL_ID=str(memorised_model_dir), GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port))
    app = subprocess.Popen([python, "app.py"], cwd=space, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False)
                break
            except Exception:
                assert app.poll() is None, app.stdout.read().decode()[-3000:]
                assert time.monotonic() < deadline, "the Space app did not start"
                time.sleep(2)
        caption, figure = client.predict(handle_file(str(memorised[0]["path"])), 3, 20, api_name="/caption")
    finally:
        app.kill()
        app.wait()
    assert caption == memorised[0]["caption"]
    with Image.open(figure) as image:  # one panel per word, 4 per row
        assert image.width > 600 and image.height > 100 * -(-len(caption.split()) // 4)
