"""Every entry point meets a damaged model folder with the one-line message of `show-attend-tell caption` (the rule
lives in the library's `load_captioner`): the CLI's `caption` and `export-onnx`, the export and push commands,
evaluation, training's `--model_name_or_path`, the pipeline and the Inference Endpoints handler."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import huggingface_hub.constants
import pytest
from transformers import BertConfig

from model_card import export, push
from model_card.handler import EndpointHandler
from show_attend_tell import ModelFolderError, ShowAttendTellCaptioningPipeline, cli
from tests.conftest import COCO_MINI
from tests.training.train_utils import TINY_ARGS, run_training
from training import evaluate_captioner

DAMAGES = ("truncated weights", "missing weights", "missing processor files", "a config that is not ours")
PROCESSOR_FILES = ("processor_config.json", "tokenizer.json", "tokenizer_config.json")


def damaged_copy(tiny_model_dir: Path, tmp_path: Path, damage: str) -> Path:
    """A copy of the tiny model folder damaged the way `damage` says (its code files stay)."""
    folder = tmp_path / "damaged"
    shutil.copytree(tiny_model_dir, folder)
    weights = folder / "model.safetensors"
    if damage == "truncated weights":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif damage == "missing weights":
        weights.unlink()
    elif damage == "missing processor files":
        for name in PROCESSOR_FILES:
            (folder / name).unlink()
    elif damage == "a config that is not ours":
        bert = BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37)
        (folder / "config.json").write_text(json.dumps(bert.to_dict()))
    return folder


def caption_message(folder: Path, photo: str, capsys) -> str:
    """What `show-attend-tell caption` says about `folder`, after its `--model FOLDER: ` prefix."""
    assert cli.main(["caption", photo, "--model", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    prefix = f"show-attend-tell caption: error: --model {folder}: "
    assert err.startswith(prefix), err
    return err[len(prefix) :].strip()


def exit_message(run: Callable[[], object]) -> str:
    with pytest.raises(SystemExit) as raised:
        run()
    return str(raised.value.code)


def run_entry_point(name: str, folder: Path, tmp_path: Path, capsys) -> tuple[str, str]:
    """`(label the message starts with, the message)` of entry point `name` on `folder`."""
    if name == "export-onnx":
        assert cli.main(["export-onnx", str(folder)]) == 2
        return str(folder), capsys.readouterr().err.removeprefix("show-attend-tell export-onnx: error: ")
    if name in ("export", "push"):
        status = export.main([str(folder)]) if name == "export" else push.main([str(folder), "--repo-id", "a/b"])
        assert status == (1 if name == "export" else 2)
        return str(folder), capsys.readouterr().err.removeprefix("error: ")
    if name == "evaluation":
        argv = ["--model", str(folder), "--output_dir", str(tmp_path / "eval")]
        return f"--model {folder}", exit_message(lambda: evaluate_captioner.main(argv))
    if name == "--model_name_or_path":
        argv = [*TINY_ARGS, "--dataset_name", COCO_MINI, "--max_train_samples", 8, "--no_validation"]
        argv += ["--model_name_or_path", folder, "--output_dir", tmp_path / "run"]
        return f"--model_name_or_path {folder}", exit_message(lambda: run_training(*argv))
    if name == "pipeline":
        with pytest.raises(ModelFolderError) as raised:
            ShowAttendTellCaptioningPipeline.from_pretrained(folder)
        return str(folder), str(raised.value)
    assert name == "handler"
    with pytest.raises(ValueError) as raised:  # the folder's own copy of ModelFolderError, a ValueError
        EndpointHandler(str(folder))
    assert type(raised.value).__name__ == "ModelFolderError"
    return str(folder), str(raised.value)


ENTRY_POINTS = ("export-onnx", "export", "push", "evaluation", "--model_name_or_path", "pipeline", "handler")


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_folder_gets_the_one_line_message_of_caption(
    tiny_model_dir, coco_train_rows, tmp_path, capsys, monkeypatch, damage, entry_point
):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    folder = damaged_copy(tiny_model_dir, tmp_path, damage)
    expected = caption_message(folder, str(coco_train_rows[0]["path"]), capsys)
    assert expected  # names what is wrong, e.g. "a 'bert' model, not a Show-Attend-Tell model"

    label, message = run_entry_point(entry_point, folder, tmp_path, capsys)

    assert message.strip() == f"{label}: {expected}"
    assert "\n" not in message.strip() and "Traceback" not in message
