"""A saved folder loads in a fresh process where `import show_attend_tell` is impossible (remote code only), and
generates there exactly what the package generates in this process: greedy, beam search with attention maps, seeded
sampling and the pipeline. CI runs these tests once more with the fresh process under the lowest, a middle and the
newest supported transformers release (`SAT_REMOTE_CODE_PYTHON`, see .ci/run)."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap

import pytest
import torch
from transformers import AutoImageProcessor, AutoTokenizer

from show_attend_tell import load_image
from tests.conftest import REMOTE_CODE_PYTHON, make_tiny

pytestmark = pytest.mark.remote_code

# Every way of decoding the tests compare; each runs in this process and in the fresh one.
DECODINGS = {
    "greedy": dict(max_new_tokens=8),
    "beam": dict(num_beams=3, max_new_tokens=8),
    "sample": dict(do_sample=True, top_k=0, top_p=1.0, temperature=1.0, max_new_tokens=8),
}

FRESH_PROCESS = textwrap.dedent(
    """
    import json, sys
    sys.modules["show_attend_tell"] = None  # any import of the package now fails
    import torch, transformers
    from transformers import AutoModel, AutoModelForImageTextToText, AutoProcessor, pipeline

    folder, decodings, images = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3:]
    try:
        import show_attend_tell  # noqa: F401
        raise SystemExit("show_attend_tell must not be importable here")
    except ImportError:
        pass
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    assert type(AutoModelForImageTextToText.from_pretrained(folder, trust_remote_code=True)) is type(model)
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    batch = processor(images=images, text=["a man"] * len(images))
    with torch.no_grad():
        logits = model(**batch).logits
    generated = {}
    for name, settings in decodings.items():
        torch.manual_seed(0)
        out = model.generate(batch["pixel_values"], output_attentions=True, return_dict_in_generate=True, **settings)
        generated[name] = {"captions": processor.batch_decode(out.sequences), "maps": out.attention_maps.tolist()}
    captioner = pipeline(model=folder, trust_remote_code=True)
    piped = captioner(images, **decodings["beam"])
    single = captioner(images[0], **decodings["beam"])
    print(json.dumps({
        "transformers": transformers.__version__,
        "module": type(model).__module__,
        "logits": logits.flatten()[:50].tolist(),
        "logits_sum": logits.sum().item(),
        "generated": generated,
        "pipeline": [result[0]["generated_text"] for result in piped],
        "pipeline_single": single[0]["generated_text"],
    }))
    """
)


def run_fresh_process(script: str, *args: str, tmp_path) -> dict:
    """Run `script` in a new `REMOTE_CODE_PYTHON` process, offline, and return the JSON of its last output line."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf_home"), "PYTHONPATH": ""}
    result = subprocess.run(
        [REMOTE_CODE_PYTHON, "-c", script, *args], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_saved_folder_loads_with_remote_code_only(tmp_path, coco_train_rows):
    captions = [caption for row in coco_train_rows[:40] for caption in row["captions"]]
    model, processor = make_tiny(captions, seed=1)
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)

    files = sorted(path.name for path in folder.iterdir())
    assert "model.safetensors" in files and "generation_config.json" in files
    assert not [name for name in files if name.endswith((".bin", ".pt", ".pth", ".pkl", ".ckpt"))]
    config = json.loads((folder / "config.json").read_text())
    for auto_class in ("AutoConfig", "AutoModel", "AutoModelForImageTextToText"):
        module, _ = config["auto_map"][auto_class].split(".")
        assert (folder / f"{module}.py").exists()
    assert "image-to-text" in config["custom_pipelines"]
    # tokenizer and image processor are standard classes: no remote code needed
    assert AutoTokenizer.from_pretrained(folder, trust_remote_code=False)("a man")["input_ids"]
    assert type(AutoImageProcessor.from_pretrained(folder, trust_remote_code=False)).__name__.startswith("ViT")

    images = [str(row["path"]) for row in coco_train_rows[:3]]
    batch = processor(images=images, text=["a man"] * 3)
    with torch.no_grad():
        logits = model(**batch).logits
    expected = {}
    for name, settings in DECODINGS.items():
        torch.manual_seed(0)
        out = model.generate(batch["pixel_values"], output_attentions=True, return_dict_in_generate=True, **settings)
        expected[name] = {"captions": processor.batch_decode(out.sequences), "maps": out.attention_maps}
    assert len(set(expected["sample"]["captions"])) > 1  # sampling really sampled

    loaded = run_fresh_process(FRESH_PROCESS, str(folder), json.dumps(DECODINGS), *images, tmp_path=tmp_path)
    assert loaded["module"].startswith("transformers_modules")
    torch.testing.assert_close(torch.tensor(loaded["logits"]), logits.flatten()[:50], rtol=1e-5, atol=1e-5)
    assert abs(loaded["logits_sum"] - logits.sum().item()) < 1e-2
    for name in DECODINGS:
        assert loaded["generated"][name]["captions"] == expected[name]["captions"], (name, loaded["transformers"])
        maps = torch.tensor(loaded["generated"][name]["maps"])
        torch.testing.assert_close(maps, expected[name]["maps"], rtol=1e-4, atol=1e-5, msg=name)
    assert loaded["pipeline"] == expected["beam"]["captions"]
    assert loaded["pipeline_single"] == expected["beam"]["captions"][0]


def test_pipeline_in_process_accepts_paths_and_pil(tiny_model_dir, coco_train_rows):
    from transformers import pipeline

    captioner = pipeline(model=str(tiny_model_dir), trust_remote_code=True)
    path = str(coco_train_rows[0]["path"])
    from_path = captioner(path, max_new_tokens=5)
    from_pil = captioner(load_image(path), max_new_tokens=5)
    assert from_path == from_pil and isinstance(from_path[0]["generated_text"], str)


CONTRACTS_PROCESS = textwrap.dedent(
    """
    import json, sys
    sys.modules["show_attend_tell"] = None
    import torch, transformers
    from transformers import AutoModel

    folder = sys.argv[1]
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    torch.manual_seed(0)
    pixels = torch.rand(2, 3, 64, 64)
    ids = torch.tensor([[1, 5, 6], [1, 7, 8]])
    with torch.no_grad():
        as_tuple = model(pixel_values=pixels, decoder_input_ids=ids, return_dict=False)
        full = model(pixel_values=pixels, decoder_input_ids=ids, output_hidden_states=True, output_attentions=True)
        model.config.use_cache = False
        no_cache = model(pixel_values=pixels, decoder_input_ids=ids)
        model.config.use_cache = True
    settings = dict(do_sample=False, num_beams=1, min_new_tokens=6, max_new_tokens=6)
    whole = model.generate(pixels, **settings)
    half = dict(settings, min_new_tokens=3, max_new_tokens=3)
    first = model.generate(pixels, output_hidden_states=True, return_dict_in_generate=True, **half)
    cache_name = "cache" if "cache" in first else "past_key_values"
    continued = model.generate(pixels, decoder_input_ids=first.sequences, **{cache_name: first[cache_name]}, **half)
    print(json.dumps({
        "tuple": isinstance(as_tuple, tuple),
        "tuple_logits": torch.equal(as_tuple[0], full.logits),
        "decoder_hidden_states": list(full.decoder_hidden_states[0].shape),
        "encoder_hidden_states": list(full.encoder_hidden_states[0].shape),
        "cross_attentions": list(full.cross_attentions[0].shape),
        "no_cache": getattr(no_cache, cache_name) is None,
        "generated_hidden_states": len(first.decoder_hidden_states),
        "continued": torch.equal(continued, whole),
    }))
    """
)


def test_saved_folder_honours_output_flags_and_continues_generation(tmp_path, tiny_model_dir):
    """`output_hidden_states`, `output_attentions`, `return_dict`, `config.use_cache` and a continued `generate()`
    under remote code, with the release of `REMOTE_CODE_PYTHON`."""
    loaded = run_fresh_process(CONTRACTS_PROCESS, str(tiny_model_dir), tmp_path=tmp_path)
    decoder_dim = json.loads((tiny_model_dir / "config.json").read_text())["decoder_dim"]
    assert loaded["tuple"] and loaded["tuple_logits"] and loaded["no_cache"] and loaded["continued"]
    assert loaded["decoder_hidden_states"] == [2, 3, decoder_dim]
    assert loaded["encoder_hidden_states"][:2] == [2, 4] and loaded["cross_attentions"] == [2, 1, 3, 4]
    assert loaded["generated_hidden_states"] == 3
