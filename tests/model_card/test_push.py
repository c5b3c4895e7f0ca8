"""`python -m model_card.push`: fails fast offline / without a token, before touching the folder; against a
local stand-in for the Hub API it regenerates the card, refuses pickles, uploads exactly the publishable files, and the
uploaded copy loads and captions in a fresh offline process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import constants

from model_card.export import check_model_folder
from model_card.push import HubAccessError, check_hub_access, push_folder
from tests.conftest import REPO_ROOT
from tests.model_card.hub_standin import TOKEN, HubStandIn

EXPECTED_FILES = {
    "README.md",
    "config.json",
    "configuration_show_attend_tell.py",
    "figures/attention_1.png",
    "generation_config.json",
    "handler.py",
    "model.safetensors",
    "modeling_show_attend_tell.py",
    "pipeline_show_attend_tell.py",
    "processing_show_attend_tell.py",
    "processor_config.json",
    "requirements.txt",
    "tokenizer.json",
    "tokenizer_config.json",
    "training_args.json",
}


@pytest.fixture()
def model_folder(tmp_path, memorised_model_dir) -> Path:
    folder = tmp_path / "sat"
    shutil.copytree(memorised_model_dir, folder)
    (folder / "training_args.json").write_text(json.dumps({"dataset_name": "coco-mini", "learning_rate": 4e-4}))
    return folder


def _push(folder: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "model_card.push", str(folder), *args]  # from the repository root, as documented
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=300)


def _clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("HF_")}
    env["HF_HOME"] = str(tmp_path / "hf_home")  # no cached login token
    env.update(extra)
    return env


def test_offline_cli_fails_fast_before_touching_the_folder(model_folder, tmp_path):
    before = sorted(path.name for path in model_folder.iterdir())
    result = _push(
        model_folder, "--repo-id", "someone/sat", env=_clean_env(tmp_path, HF_HUB_OFFLINE="1", HF_TOKEN=TOKEN)
    )
    assert result.returncode == 1
    assert "HF_HUB_OFFLINE is set" in result.stderr and "Traceback" not in result.stderr
    assert sorted(path.name for path in model_folder.iterdir()) == before  # no card, no handler written


@pytest.mark.parametrize(
    "token, endpoint, message",
    [
        (None, None, "no Hugging Face token"),
        (TOKEN, "http://127.0.0.1:9", "Cannot reach the Hub at http://127.0.0.1:9"),
        ("hf_wrong", "standin", "token is invalid or expired"),
        (TOKEN, "standin-read-only", "is read-only"),
    ],
)
def test_push_folder_fails_fast_without_access(model_folder, tmp_path, monkeypatch, token, endpoint, message):
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no_token"))
    before = sorted(path.name for path in model_folder.iterdir())
    with HubStandIn(tmp_path / "hub", role="read" if endpoint == "standin-read-only" else "write") as hub:
        monkeypatch.setattr(constants, "ENDPOINT", hub.endpoint if endpoint and "standin" in endpoint else endpoint)
        with pytest.raises(HubAccessError, match=message):
            push_folder(model_folder, "someone/sat", token=token)
    assert sorted(path.name for path in model_folder.iterdir()) == before


def test_check_hub_access_rejects_bad_repo_ids(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for repo_id in ("no-namespace", "a/b/c", "someone/bad name"):
        with pytest.raises(HubAccessError, match="repo-id"):
            check_hub_access(repo_id, token=TOKEN)


@pytest.mark.slow
def test_push_to_local_hub_standin(model_folder, tmp_path, memorised):
    hub_root = tmp_path / "hub"
    metrics = tmp_path / "metrics.json"
    metrics.write_text(
        json.dumps(
            {"dataset": "coco-mini", "split": "test", "num_images": 2, "metrics": {"BLEU-4": 0.25, "CIDEr": 1.5}}
        )
    )
    (model_folder / "runs").mkdir()
    (model_folder / "runs" / "events.out.tfevents").write_bytes(b"tensorboard log")
    with HubStandIn(hub_root) as hub:
        env = _clean_env(tmp_path, HF_ENDPOINT=hub.endpoint, HF_TOKEN=TOKEN)
        args = ["--repo-id", "standin-user/sat", "--revision", "dev", "--metrics", str(metrics)]
        args += ["--figure", str(memorised[0]["path"]), "--commit-message", "First upload", "--private"]

        (model_folder / "optimizer.pt").write_bytes(b"\x80\x04pickle")  # refused: nothing is uploaded
        refused = _push(model_folder, *args, env=env)
        assert refused.returncode == 1 and "optimizer.pt" in refused.stderr
        assert not any("/commit/" in path for _, path in hub.requests)
        (model_folder / "optimizer.pt").unlink()

        result = _push(model_folder, *args, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.strip().startswith(f"{hub.endpoint}/standin-user/sat/commit/")
        created = hub.repos["standin-user/sat"]
        assert created.get("private") is True or created.get("visibility") == "private", created
        assert ("standin-user/sat", "dev") in hub.branches
        assert hub.commit_messages == ["First upload"]
        uploaded = hub.files("standin-user/sat", "dev")

    assert set(uploaded) == EXPECTED_FILES  # no logs, no pickles
    card = uploaded["README.md"].decode()
    assert 'repo_id = "standin-user/sat"' in card and 'revision = "dev"' in card
    assert "value: 0.25" in card and "| CIDEr | 150.0 |" in card

    # The uploaded copy is complete and captions in a fresh process with only transformers and its requirements.
    copy = tmp_path / "downloaded"
    for name, content in uploaded.items():
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        (copy / name).write_bytes(content)
    assert check_model_folder(copy) == []
    script = (
        "import sys; sys.modules['show_attend_tell'] = None\n"
        "from transformers import pipeline\n"
        f"print(pipeline(model={str(copy)!r}, trust_remote_code=True)({str(memorised[0]['path'])!r}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=_clean_env(tmp_path, HF_HUB_OFFLINE="1")
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert loaded.stdout.strip().splitlines()[-1] == str([{"generated_text": memorised[0]["caption"]}])


def test_training_checkpoints_are_ignored_but_stray_pickles_are_not(tmp_path):
    from model_card.export import forbidden_files

    (tmp_path / "checkpoints" / "step_10").mkdir(parents=True)
    (tmp_path / "checkpoints" / "step_10" / "optimizer.bin").write_bytes(b"x")
    (tmp_path / "checkpoints" / "step_10" / "random_states_0.pkl").write_bytes(b"x")
    assert forbidden_files(tmp_path) == []
    (tmp_path / "pytorch_model.bin").write_bytes(b"x")
    assert forbidden_files(tmp_path) == ["pytorch_model.bin"]


@pytest.mark.slow
def test_push_with_onnx_and_the_browser_space(model_folder, tmp_path, memorised, monkeypatch):
    """`--onnx --web-space`: the model repository gets the verified onnx/ files, and the Space the static page."""
    with HubStandIn(tmp_path / "hub") as hub:
        monkeypatch.setattr(constants, "ENDPOINT", hub.endpoint)
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        push_folder(
            model_folder,
            "standin-user/sat",
            figures=[memorised[0]["path"]],
            token=TOKEN,
            onnx=True,
            web_space="standin-user/sat-web",
        )
        model_files = hub.files("standin-user/sat", "main")
        space_files = hub.files("standin-user/sat-web", "main")
    onnx_files = {"onnx/encoder_model.onnx", "onnx/decoder_model.onnx", "onnx/captioner.json"}
    assert set(model_files) == EXPECTED_FILES | onnx_files
    assert onnx_files | {"index.html", "app.js", "README.md"} <= set(space_files)
    assert space_files["onnx/decoder_model.onnx"] == model_files["onnx/decoder_model.onnx"]
