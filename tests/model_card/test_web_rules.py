"""The browser page's end-of-caption rule (model_card/web/app.js, `captionLength`) against the PyTorch one, run with
node: the page's script loads in a `vm` context with stand-ins for the browser objects it touches when it starts.

Needs node (CI installs it for the page's npm packages); without it the test is skipped, unless SAT_REQUIRE_BROWSER=1
(CI) turns the skip into a failure."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
import torch

from model_card.web_space import WEB_DIR
from show_attend_tell.configuration_show_attend_tell import caption_lengths
from tests.conftest import generated_rows

NODE = shutil.which("node")
# The page's script with stand-ins for `location`, `document` and `ort`; its model load fails (no `fetch`), which the
# page reports in its status line. Reads the rows as JSON on stdin and prints `captionLength` of each row.
RUNNER = """
const fs = require("fs"), vm = require("vm");
const element = { addEventListener() {}, textContent: "", dataset: {} };
const context = vm.createContext({
  location: { search: "" }, URLSearchParams, console, ort: { env: { wasm: {} } },
  document: { getElementById: () => element, body: element },
});
vm.runInContext(fs.readFileSync(process.argv[1], "utf8"), context);
const { rows, eos } = JSON.parse(fs.readFileSync(0, "utf8"));
context.rows = rows; context.eos = eos;
console.log(JSON.stringify(vm.runInContext("rows.map((ids) => captionLength(ids, eos))", context)));
"""


def test_web_caption_length_equals_torch():
    if NODE is None:
        if os.environ.get("SAT_REQUIRE_BROWSER") == "1":
            pytest.fail("the web page's rule test needs node (apt-get install nodejs)")
        pytest.skip("the web page's rule test needs node")
    eos = 2
    rows = generated_rows(eos)
    payload = json.dumps({"rows": rows.tolist() + [[]], "eos": eos})
    result = subprocess.run(
        [NODE, "-e", RUNNER, str(WEB_DIR / "app.js")], input=payload, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-3000:]
    expected = caption_lengths(torch.from_numpy(rows), eos).tolist() + [0]
    assert json.loads(result.stdout) == expected
