"""The endpoint handler serves the public: it never opens the server's files, and every parameter is checked before
it reaches `generate()` (no overflow, no NaN, no 1000 returned sequences)."""

from __future__ import annotations

import base64
import math
import shutil

import pytest
from transformers import AutoConfig

from model_card.handler import MAX_BEAMS, PIPELINE_CLASS, EndpointHandler
from show_attend_tell import ShowAttendTellProcessor, build_tokenizer


@pytest.fixture(scope="module")
def handler(tiny_model_dir):
    return EndpointHandler(str(tiny_model_dir))


@pytest.fixture(scope="module")
def photo_bytes(coco_train_rows) -> bytes:
    return coco_train_rows[0]["path"].read_bytes()


def error_of(handler, request) -> str:
    with pytest.raises(ValueError) as error:
        handler(request)
    return str(error.value)


def test_server_paths_are_refused_alike_whether_or_not_they_exist(handler, coco_train_rows, tmp_path):
    existing = str(coco_train_rows[0]["path"])
    missing = str(tmp_path / "no-such-photo.jpg")
    for inputs, where in ((existing, "inputs"), ([missing], "inputs[0]")):
        message = error_of(handler, {"inputs": inputs})
        assert message.startswith(f"{where}: a string must be an http(s) URL, a data URL or base64 image data")
        assert "file paths are not accepted" in message and existing not in message and missing not in message
    # the two messages differ only in the length of the string, never in whether the file exists
    first = error_of(handler, {"inputs": existing}).rsplit("got", 1)[0]
    second = error_of(handler, {"inputs": missing}).rsplit("got", 1)[0]
    assert first == second
    assert "file paths are not accepted" in error_of(handler, {"inputs": "file://" + existing})


def test_base64_with_line_breaks_or_the_url_safe_alphabet_is_an_image(handler, photo_bytes):
    expected = handler({"inputs": photo_bytes, "parameters": {"max_new_tokens": 4}})
    for encoded in (base64.encodebytes(photo_bytes).decode(), base64.urlsafe_b64encode(photo_bytes).decode()):
        assert handler({"inputs": encoded, "parameters": {"max_new_tokens": 4}}) == expected


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        ({"num_beams": math.inf}, "parameters['num_beams'] must be an integer, got inf"),
        ({"num_beams": math.nan}, "parameters['num_beams'] must be an integer, got nan"),
        ({"temperature": math.nan}, "parameters['temperature'] must be a number, got nan"),
        ({"length_penalty": -math.inf}, "parameters['length_penalty'] must be a number, got -inf"),
        ({"top_p": 5}, "parameters['top_p'] must be more than 0.0 and at most 1.0, got 5.0"),
        ({"top_p": 0}, "parameters['top_p'] must be more than 0.0 and at most 1.0, got 0.0"),
        ({"temperature": 0.0}, "parameters['temperature'] must be more than 0.0 and at most 100.0, got 0.0"),
        ({"num_return_sequences": 0}, "parameters['num_return_sequences'] must be at least 1 and at most 10, got 0"),
        ({"no_repeat_ngram_size": -1}, "parameters['no_repeat_ngram_size'] must be at least 0 and at most 100, got -1"),
        (
            {"num_return_sequences": 1000, "do_sample": True},
            f"parameters['num_return_sequences'] must be at least 1 and at most {MAX_BEAMS}, got 1000",
        ),
        ({"min_new_tokens": 9, "max_new_tokens": 3}, "parameters['min_new_tokens'] must not exceed"),
        ({"top_k": -2}, "parameters['top_k'] must be at least 0, got -2"),
        ({"do_sample": 1}, "parameters['do_sample'] must be true or false, got 1"),
    ],
)
def test_parameters_outside_their_range_are_refused_by_name(handler, photo_bytes, parameters, expected):
    assert error_of(handler, {"inputs": photo_bytes, "parameters": parameters}).startswith(expected)


def test_sampling_returns_the_sequences_asked_for(handler, photo_bytes):
    parameters = {"do_sample": True, "num_return_sequences": MAX_BEAMS, "top_p": 0.9, "max_new_tokens": 3}
    assert len(handler({"inputs": photo_bytes, "parameters": parameters})) == MAX_BEAMS


def test_a_tokenizer_from_another_folder_is_refused_at_start(tiny_model_dir, tmp_path):
    folder = tmp_path / "mixed"
    shutil.copytree(tiny_model_dir, folder)
    processor = ShowAttendTellProcessor.from_pretrained(tiny_model_dir)
    ShowAttendTellProcessor(processor.image_processor, build_tokenizer(["other words"])).save_pretrained(folder)
    with pytest.raises(ValueError, match=r"the tokenizer has 6 tokens but the model's config.vocab_size is \d+"):
        EndpointHandler(str(folder))


def test_the_handler_captions_through_the_pipeline_the_folder_registers(handler, tiny_model_dir):
    config = AutoConfig.from_pretrained(tiny_model_dir, trust_remote_code=True)
    (registered,) = config.custom_pipelines.values()
    assert registered["impl"] == PIPELINE_CLASS
    module_name, _, class_name = PIPELINE_CLASS.rpartition(".")
    captioner = type(handler.captioner)
    assert captioner.__name__ == class_name and captioner.__module__.endswith(module_name)
    assert not captioner.__module__.startswith("show_attend_tell")  # the folder's copy, loaded as remote code
