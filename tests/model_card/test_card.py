"""The model card: validated metadata, numbers only from metrics.json, real attention figures with photo credits, a
usage snippet that runs, and the export check that reports what a folder is missing."""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import ModelCard
from PIL import Image

from model_card.export import check_model_folder, export_model_folder
from model_card.folder_rules import declared_requirements
from model_card.generator import HANDLER_PATH, Photo, write_model_card

METRICS = {
    "dataset": "../shared/data/coco-mini",
    "split": "test",
    "num_images": 40,
    "decoding": {"num_beams": 3, "length_penalty": 1.0, "max_new_tokens": 30},
    "metrics": {
        "BLEU-1": 0.4817,
        "BLEU-2": 0.2903,
        "BLEU-3": 0.1622,
        "BLEU-4": 0.0911,
        "METEOR": 0.1287,
        "ROUGE-L": 0.3544,
        "CIDEr": 0.2731,
        "SPICE": None,
    },
    "grounding": {"overall": {"hit_rate": 0.3125, "center_baseline": 0.25, "words": 16}, "per_category": {}},
    "model": "outputs/sat",
}


@pytest.fixture()
def model_folder(tmp_path, memorised_model_dir) -> Path:
    folder = tmp_path / "sat-coco"
    shutil.copytree(memorised_model_dir, folder)
    training_args = {"dataset_name": "/data/coco-mini", "learning_rate": 4e-4, "num_train_epochs": 3, "hub_token": None}
    (folder / "training_args.json").write_text(json.dumps(training_args))
    (folder / "val_metrics.json").write_text(json.dumps({"epoch": 3, "BLEU-4": 0.05, "CIDEr": 0.2}))
    return folder


def _metrics_file(tmp_path: Path, metrics: dict = METRICS) -> Path:
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(metrics))
    return path


def test_card_metadata_results_and_figures(model_folder, tmp_path, memorised):
    photos = [Photo.from_path(row["path"]) for row in memorised]
    card = write_model_card(model_folder, _metrics_file(tmp_path), figures=photos, repo_id="someone/sat-coco")

    loaded = ModelCard.load(model_folder / "README.md")
    data = loaded.data
    assert data.library_name == "transformers" and data.pipeline_tag == "image-to-text"
    assert data.license == "apache-2.0"
    assert "custom_code" in data.tags
    assert data.base_model == "timm/resnet10t.c3_in1k"
    assert set(data.metrics) == {"bleu", "meteor", "rouge", "cider"}
    # model-index: exactly the measured scores (SPICE was not computed, so it is absent)
    measured = {name: value for name, value in METRICS["metrics"].items() if value is not None}
    assert {r.metric_name: r.metric_value for r in data.eval_results} == measured
    assert {r.dataset_split for r in data.eval_results} == {"test"}
    assert loaded.text == card.text
    # evaluation table: the same numbers x100
    for name, value in measured.items():
        assert re.search(rf"\| {re.escape(name)} \| {100 * value:.1f} \|", loaded.text), name
    assert "SPICE" not in loaded.text
    assert "hit rate 31.2%" in loaded.text or "hit rate 31.3%" in loaded.text

    # one attention figure per photo, drawn from the real photo; photos themselves are not copied
    figures = sorted((model_folder / "figures").glob("*.png"))
    assert [path.name for path in figures] == ["attention_1.png", "attention_2.png"]
    for figure, row, photo in zip(figures, memorised, photos, strict=True):
        with Image.open(figure) as image:
            assert image.width > 300 and image.height > 100
        assert f'caption "{row["caption"]}"]({"figures/" + figure.name})' in loaded.text
        assert photo.credit and photo.credit in loaded.text
        assert "Attribution" in photo.credit and "creativecommons.org" in photo.credit
    assert not list(model_folder.rglob("*.jpg"))

    assert "Xu, Kelvin" in loaded.text and "1502.03044" in loaded.text
    assert "Limitations and bias" in loaded.text
    assert "`learning_rate` | `0.0004`" in loaded.text and "hub_token" not in loaded.text
    assert "`dataset_name` | `coco-mini`" in loaded.text  # local paths reduced to their name
    assert 'revision = "main"' in loaded.text and 'repo_id = "someone/sat-coco"' in loaded.text


def test_card_without_metrics_reports_no_evaluation(model_folder):
    write_model_card(model_folder)
    card = ModelCard.load(model_folder / "README.md")
    assert not card.data.eval_results and not card.data.metrics
    evaluation = card.text.split("## Evaluation")[1].split("## Attention")[0]
    assert "No evaluation was run" in evaluation
    assert "| BLEU-4 |" not in evaluation
    assert "| BLEU-4 | 0.05 |" in card.text  # the validation metrics training recorded, in the training section
    assert "No attention figures" in card.text


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m: m.pop("split"), "missing keys ['split']"),
        (lambda m: m["metrics"].update({"CIDEr": math.nan}), "metrics['CIDEr'] must be a finite number"),
        (lambda m: m["metrics"].update({"BLEU-4": "0.3"}), "metrics['BLEU-4'] must be a finite number"),
        (lambda m: m.update({"metrics": {}}), "'metrics' must be a non-empty object"),
    ],
)
def test_bad_metrics_file_is_named(model_folder, tmp_path, change, message):
    metrics = json.loads(json.dumps(METRICS))
    change(metrics)
    path = _metrics_file(tmp_path, metrics)
    with pytest.raises(ValueError) as error:
        write_model_card(model_folder, path)
    assert str(path) in str(error.value) and message in str(error.value)
    assert not (model_folder / "README.md").exists()


def test_usage_snippets_run_in_a_fresh_process(model_folder, tmp_path, memorised):
    write_model_card(model_folder, repo_id=str(model_folder))
    text = (model_folder / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 2
    photo = str(memorised[0]["path"])
    script = "\n".join(blocks).replace('"photo.jpg"', repr(photo))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    words = len(memorised[0]["caption"].split())
    assert lines[0].startswith(memorised[0]["caption"] + " ")  # generate() + batch_decode
    assert lines[0].endswith(f"({words + 1}, 4)")  # attention: one row per token incl. <eos>, 2x2 grid
    assert lines[1] == str([{"generated_text": memorised[0]["caption"]}])  # the custom pipeline


def test_check_model_folder_reports_what_is_missing(model_folder, tmp_path):
    problems = check_model_folder(model_folder)
    assert "README.md is missing" in problems and "handler.py is missing" in problems
    assert "requirements.txt is missing" in problems

    export_model_folder(model_folder, _metrics_file(tmp_path))
    assert check_model_folder(model_folder) == []
    assert (model_folder / "handler.py").read_text() == HANDLER_PATH.read_text()
    requirements = (model_folder / "requirements.txt").read_text().split()
    assert requirements == declared_requirements()  # the ranges of pyproject.toml (tests/test_compatibility.py)
    install_line = "pip install " + " ".join(shlex.quote(line) for line in requirements)
    assert install_line in (model_folder / "README.md").read_text()

    (model_folder / "optimizer.pt").write_bytes(b"\x80\x04pickle")
    with pytest.raises(ValueError, match=r"pickle-based files \['optimizer.pt'\]"):
        export_model_folder(model_folder)
    (model_folder / "model.safetensors").unlink()
    config = json.loads((model_folder / "config.json").read_text())
    config["auto_map"]["AutoModel"] = "modeling_show_attend_tell.NoSuchModel"
    (model_folder / "config.json").write_text(json.dumps(config))
    (model_folder / "training_args.json").write_text(json.dumps({"hub_token": "hf_secret"}))
    problems = "\n".join(check_model_folder(model_folder))
    assert "optimizer.pt: pickle-based file" in problems
    assert "model.safetensors is missing" in problems
    assert "modeling_show_attend_tell.py has no NoSuchModel" in problems
    assert "training_args.json: holds a secret in 'hub_token'" in problems


# --------------------------------------------------------------------------------------------------------------------
# Secrets, weak models, failed exports
# --------------------------------------------------------------------------------------------------------------------

HF_LIKE = "hf_" + "Ab3" * 12  # the shape of a Hugging Face access token
SECRET_ARGS = {
    "trackers": {"wandb": {"token": "nested-secret-1"}},
    "wandb_api_key": "wandb-secret-2",
    "HF_TOKEN": "env-secret-3",
    "run_name": HF_LIKE,  # a token pasted under a harmless name
    "callbacks": [{"name": "early-stop"}, {"api_key": "listed-secret-4"}],
    "use_auth_token": True,  # a flag, no secret
}
SECRET_VALUES = ("nested-secret-1", "wandb-secret-2", "env-secret-3", HF_LIKE, "listed-secret-4")


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def test_secrets_at_any_depth_are_named_never_printed(model_folder):
    (model_folder / "training_args.json").write_text(json.dumps({"learning_rate": 4e-4, **SECRET_ARGS}))
    (model_folder / "logs").mkdir()
    (model_folder / "logs" / "run.json").write_text(json.dumps([{"settings": {"password": "pw-secret-5"}}]))
    (model_folder / "notes.txt").write_text(f"trained on a laptop\nlogin with {HF_LIKE}\n")
    (model_folder / "checkpoints").mkdir()  # never uploaded, so not checked
    (model_folder / "checkpoints" / "trainer_state.json").write_text(json.dumps({"token": "not-published"}))

    problems = [problem for problem in check_model_folder(model_folder) if "secret" in problem or "token" in problem]
    assert problems == [
        "logs/run.json: holds a secret in '[0].settings.password'; remove it before publishing",
        "notes.txt: line 2 holds what looks like a Hugging Face token",
        *(
            f"training_args.json: holds a secret in {key!r}; remove it before publishing"
            for key in ("trackers.wandb.token", "wandb_api_key", "HF_TOKEN", "run_name", "callbacks[1].api_key")
        ),
    ]
    assert not any(value in "\n".join(problems) for value in (*SECRET_VALUES, "pw-secret-5"))


def test_card_never_shows_secret_values(model_folder):
    (model_folder / "training_args.json").write_text(json.dumps({"learning_rate": 4e-4, **SECRET_ARGS}))
    (model_folder / "val_metrics.json").write_text(json.dumps({"CIDEr": 0.2, "tracker": {"api_key": "val-secret"}}))
    write_model_card(model_folder)
    text = (model_folder / "README.md").read_text()
    assert "`learning_rate` | `0.0004`" in text and "| CIDEr | 0.2 |" in text
    for leaked in (*SECRET_VALUES, "val-secret", "wandb_api_key", "HF_TOKEN", "run_name", "api_key"):
        assert leaked not in text


def test_export_of_a_model_without_grounded_words(model_folder, tmp_path):
    metrics = json.loads(json.dumps(METRICS))
    metrics["grounding"] = {"overall": {"hit_rate": None, "center_baseline": None, "words": 0}, "per_category": {}}
    export_model_folder(model_folder, _metrics_file(tmp_path, metrics))
    assert check_model_folder(model_folder) == []
    evaluation = (model_folder / "README.md").read_text().split("## Evaluation")[1].split("## Attention")[0]
    assert "not measured, because no grounded words were generated" in evaluation and "hit rate" not in evaluation
    assert "| CIDEr | 27.3 |" in evaluation


@pytest.mark.parametrize(
    ("grounding", "message"),
    [
        ({"overall": {"hit_rate": "high", "center_baseline": 0.2, "words": 3}}, "grounding.overall.hit_rate must be"),
        ({"overall": {"hit_rate": 0.5, "center_baseline": 0.2}}, "grounding.overall.words must be a count"),
        ([0.5], "'grounding' must hold an 'overall' object"),
    ],
)
def test_bad_grounding_block_is_named(model_folder, tmp_path, grounding, message):
    path = _metrics_file(tmp_path, {**METRICS, "grounding": grounding})
    with pytest.raises(ValueError, match=re.escape(f"{path}: {message}")):
        write_model_card(model_folder, path)


@pytest.mark.parametrize("failure", ["secret in training_args.json", "second photo missing", "token in the card"])
def test_failed_export_leaves_the_folder_as_it_was(model_folder, tmp_path, memorised, failure):
    kwargs: dict = {"figures": [memorised[0]["path"]]}
    if failure == "secret in training_args.json":  # found by the last check, after the card and figures are made
        (model_folder / "training_args.json").write_text(json.dumps({"trackers": {"hub_token": "nested-secret"}}))
    elif failure == "second photo missing":  # the first figure is drawn before the second photo fails
        kwargs["figures"] = [memorised[0]["path"], tmp_path / "no_such_photo.jpg"]
    else:
        kwargs["model_name"] = f"sat-{HF_LIKE}"
    (model_folder / "README.md").write_text("---\nlicense: mit\n---\nA card the user wrote.\n")
    before = _snapshot(model_folder)
    with pytest.raises(ValueError) as error:
        export_model_folder(model_folder, _metrics_file(tmp_path), **kwargs)
    assert _snapshot(model_folder) == before  # no handler.py, requirements.txt, figures; the old card untouched
    assert [path.name for path in model_folder.iterdir() if path.name.startswith(".")] == []
    assert HF_LIKE not in str(error.value) and "nested-secret" not in str(error.value)


def test_export_command_prepares_the_folder_and_names_what_is_wrong(model_folder, tmp_path, memorised, capsys):
    from model_card.export import main

    metrics = _metrics_file(tmp_path)
    argv = [str(model_folder), "--metrics", str(metrics), "--figure", str(memorised[0]["path"]), "--license", "other"]
    assert main([*argv, "--dataset", "flickr8k"]) == 0
    assert check_model_folder(model_folder) == []
    card = ModelCard.load(model_folder / "README.md")
    assert card.data.license == "other" and card.data.datasets == ["flickr8k"]
    assert "| BLEU-4 | 9.1 |" in card.text  # the test metrics of --metrics, x100
    assert (model_folder / "figures" / "attention_1.png").is_file()

    (model_folder / "model.safetensors").unlink()
    capsys.readouterr()
    assert main(argv) == 1
    assert "model.safetensors" in capsys.readouterr().err
