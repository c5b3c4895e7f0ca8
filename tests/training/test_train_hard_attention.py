"""`training.train --attention_type hard`: the reward baseline is saved with every checkpoint, a resumed run ends with
exactly the weights of an uninterrupted one, and the saved folder is a hard model that captions."""

from __future__ import annotations

import torch

from show_attend_tell import ShowAttendTellForConditionalGeneration, ShowAttendTellProcessor, caption_images
from tests.training.train_utils import exact_resume_args, read_json, read_weights, run_training


def test_hard_attention_run_resumes_exactly(tmp_path):
    # 12 scenes x 4 captions = 48 pairs = 6 batches of 8 = 3 optimizer steps per epoch (2 batches accumulated):
    # step 4 lies inside the second epoch; the sampled locations, the expected-context draws and the baseline must all
    # continue exactly.
    common = exact_resume_args(tmp_path, "--attention_type", "hard")
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    run_training(*common, "--output_dir", full)
    assert (full / "checkpoints" / "step_4" / "custom_checkpoint_0.pkl").is_file()  # the baseline's state
    run_training(*common, "--output_dir", resumed, "--resume_from_checkpoint", full / "checkpoints" / "step_4")

    full_log = read_json(full / "trainer_state.json")["log_history"]
    resumed_log = read_json(resumed / "trainer_state.json")["log_history"]
    assert [entry["step"] for entry in resumed_log] == list(range(1, 9))
    for expected, actual in zip(full_log, resumed_log, strict=True):
        for name in ("loss", "hard_baseline", "hard_reward", "hard_entropy"):
            assert actual.get(name) == expected.get(name), (name, expected, actual)
    assert full_log[-1]["hard_baseline"] != full_log[0]["hard_baseline"]  # the baseline moved

    expected, actual = read_weights(full / "model.safetensors"), read_weights(resumed / "model.safetensors")
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=0, atol=0, msg=name)

    model = ShowAttendTellForConditionalGeneration.from_pretrained(full).eval()
    assert model.config.attention_type == "hard" and model.config.hard_expected_context_prob == 0.5
    processor = ShowAttendTellProcessor.from_pretrained(full)
    assert (full / "figures" / "attention_example.png").is_file()
    image = torch.rand(64, 64, 3).numpy()
    assert caption_images(model, processor, [image])[0].attention.shape[1:] == tuple(model.config.grid_size)
