"""The Inference Endpoints handler, copied into a model folder, in a fresh process where `import show_attend_tell`
is impossible: real photos as bytes, base64 and data URLs give the memorised captions; bad requests give clear
errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from model_card.generator import HANDLER_PATH
from tests.conftest import REMOTE_CODE_PYTHON

pytestmark = pytest.mark.remote_code

SCRIPT = r"""
import base64, json, sys
sys.modules["show_attend_tell"] = None  # the package must not be needed
sys.path.insert(0, sys.argv[1])
from handler import EndpointHandler

handler = EndpointHandler(sys.argv[1])
photos = [open(path, "rb").read() for path in sys.argv[2:]]
b64 = base64.b64encode(photos[1]).decode()
results = {
    "bytes": handler({"inputs": photos[0]}),
    "base64": handler({"inputs": b64, "parameters": {"num_beams": 3, "max_new_tokens": 30}}),
    "data_url": handler({"inputs": "data:image/jpeg;base64," + b64, "parameters": {"num_beams": 1}}),
    "list": handler({"inputs": [photos[0], b64]}),
    "two_sequences": handler({"inputs": photos[0], "parameters": {"num_beams": 3, "num_return_sequences": 2}}),
    "short": handler({"inputs": photos[0], "parameters": {"max_new_tokens": 2}}),
}
bad = {
    "no_inputs": {"image": photos[0]},
    "not_an_image": {"inputs": b"these bytes are not an image"},
    "bad_base64": {"inputs": "data:image/jpeg;base64,###not-base64###"},
    "number": {"inputs": 42},
    "empty_list": {"inputs": []},
    "unknown_parameter": {"inputs": photos[0], "parameters": {"temperature": 1.0, "beams": 3}},
    "bad_beams": {"inputs": photos[0], "parameters": {"num_beams": 0}},
    "float_beams": {"inputs": photos[0], "parameters": {"num_beams": 2.5}},
    "parameters_not_dict": {"inputs": photos[0], "parameters": [1, 2]},
    "unreachable_url": {"inputs": "http://127.0.0.1:9/photo.jpg"},
    "not_a_dict": [photos[0]],
}
errors = {}
for name, request in bad.items():
    try:
        handler(request)
        errors[name] = None
    except ValueError as error:
        errors[name] = str(error)
print(json.dumps({"results": results, "errors": errors, "loaded_package": "show_attend_tell" in sys.modules
                  and sys.modules["show_attend_tell"] is not None}))
"""


@pytest.mark.slow
def test_handler_standalone(memorised_model_dir, memorised, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(memorised_model_dir, folder)
    shutil.copyfile(HANDLER_PATH, folder / "handler.py")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    photos = [str(row["path"]) for row in memorised]
    process = subprocess.run(
        [REMOTE_CODE_PYTHON, "-c", SCRIPT, str(folder), *photos], capture_output=True, text=True, env=env, timeout=300
    )
    assert process.returncode == 0, process.stderr[-3000:]
    report = json.loads(process.stdout.strip().splitlines()[-1])
    first, second = (row["caption"] for row in memorised)
    results = report["results"]
    assert results["bytes"] == [{"generated_text": first}]
    assert results["base64"] == [{"generated_text": second}]
    assert results["data_url"] == [{"generated_text": second}]
    assert results["list"] == [{"generated_text": first}, {"generated_text": second}]
    assert len(results["two_sequences"]) == 2 and results["two_sequences"][0] == {"generated_text": first}
    assert results["short"] == [{"generated_text": " ".join(first.split()[:2])}]
    assert report["loaded_package"] is False

    errors = report["errors"]
    assert "missing 'inputs'" in errors["no_inputs"] and "['image']" in errors["no_inputs"]
    assert errors["not_an_image"].startswith("inputs: ") and "not a readable image" in errors["not_an_image"]
    assert "base64" in errors["bad_base64"]
    assert "got int" in errors["number"]
    assert "empty list" in errors["empty_list"]
    assert "['beams']" in errors["unknown_parameter"]
    assert "num_beams" in errors["bad_beams"] and "got 0" in errors["bad_beams"]
    assert "must be an integer, got 2.5" in errors["float_beams"]
    assert "'parameters' must be an object" in errors["parameters_not_dict"]
    assert "Could not download image http://127.0.0.1:9/photo.jpg" in errors["unreachable_url"]
    assert "JSON object" in errors["not_a_dict"]
