"""The output folder of a training run is a Hub-ready model: it loads offline in a fresh process with remote code,
decodes like validation did, and carries the arguments, the validation metrics and an attention figure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from show_attend_tell import build_tokenizer
from tests.conftest import COCO_MINI, read_metadata
from tests.training.train_utils import TINY_ARGS, read_json, run_training


def test_output_folder_is_a_complete_model_that_loads_offline(tmp_path):
    output_dir = tmp_path / "run"
    summary = run_training(
        *TINY_ARGS,
        "--dataset_name", COCO_MINI,
        "--max_train_samples", 16,
        "--max_eval_samples", 4,
        "--num_train_epochs", 2,
        "--no_repeat_ngram_size", 3,
        "--attention_entropy_weight", 0.1,
        "--output_dir", output_dir,
        "--feature_cache", tmp_path / "cache",
        "--with_tracking",
        "--report_to", "tensorboard",
    )  # fmt: skip

    for name in ("config.json", "model.safetensors", "generation_config.json", "processor_config.json",
                 "tokenizer.json", "modeling_show_attend_tell.py", "training_args.json", "val_metrics.json",
                 "figures/attention_example.png"):  # fmt: skip
        assert (output_dir / name).is_file(), name
    assert list((output_dir / "runs").rglob("events.out.tfevents.*")), "no tensorboard log"

    metrics = read_json(output_dir / "val_metrics.json")
    assert [entry["epoch"] for entry in metrics["history"]] == [0, 1]
    best = max(metrics["history"], key=lambda entry: entry["CIDEr"])
    assert metrics["best"] == best and metrics["best_epoch"] == best["epoch"] == summary["best_epoch"]
    assert 0 < metrics["train_runtime_s"] < 600  # the two epochs and their validation
    assert set(best) >= {"BLEU-1", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr", "loss"}
    assert read_json(output_dir / "training_args.json")["dataset_name"] == str(COCO_MINI)
    assert read_json(output_dir / "config.json")["attention_entropy_weight"] == 0.1
    generation = read_json(output_dir / "generation_config.json")
    assert generation["num_beams"] == 2 and generation["max_new_tokens"] == 12
    unk_token_id = json.loads((output_dir / "tokenizer.json").read_text())["model"]["vocab"]["<unk>"]
    assert generation["suppress_tokens"] == [unk_token_id]  # a saved captioner never writes the unknown word
    assert generation["no_repeat_ngram_size"] == 3

    # The vocabulary comes from the 16 training images only (not from validation captions).
    train_captions = [caption for row in read_metadata(COCO_MINI / "train")[:16] for caption in row["captions"]]
    vocabulary = json.loads((output_dir / "tokenizer.json").read_text())["model"]["vocab"]
    assert vocabulary == build_tokenizer(train_captions).get_vocab()

    image = COCO_MINI / "test" / read_metadata(COCO_MINI / "test")[0]["file_name"]
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["show_attend_tell"] = None  # only the folder's own code may be used
        import torch
        from transformers import AutoModel, AutoProcessor
        model = AutoModel.from_pretrained({str(output_dir)!r}, trust_remote_code=True).eval()
        processor = AutoProcessor.from_pretrained({str(output_dir)!r}, trust_remote_code=True)
        ids = model.generate(processor(images={str(image)!r})["pixel_values"])
        print("CAPTION", repr(processor.batch_decode(ids)[0]), model.generation_config.num_beams)
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "CAPTION" in result.stdout and result.stdout.strip().endswith(" 2")
