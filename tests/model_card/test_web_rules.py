"""The browser page's decoding rules (model_card/web/app.js: `captionLength`, the end of a caption; `nextToken`, the
greedy choice without banned tokens; `repeatedNgramEnds`, the tokens `no_repeat_ngram_size` bans) against the PyTorch
and numpy ones, run with node: the page's script loads in a `vm`
context with stand-ins for the browser objects it touches when it starts.

Needs node (CI installs it for the page's npm packages); without it the test is skipped, unless SAT_REQUIRE_BROWSER=1
(CI) turns the skip into a failure."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import torch

from model_card.web_space import WEB_DIR
from show_attend_tell.configuration_show_attend_tell import caption_lengths
from show_attend_tell_onnx import repeated_ngram_ends
from tests.conftest import generated_rows

NODE = shutil.which("node")
# The page's script with stand-ins for `location`, `document` and `ort`; its model load fails (no `fetch`), which the
# page reports in its status line. Reads `{"expression": ..., name: value, ...}` as JSON on stdin, sets the values as
# globals of the page and prints the expression's value as JSON.
RUNNER = """
const fs = require("fs"), vm = require("vm");
const element = { addEventListener() {}, textContent: "", dataset: {} };
const context = vm.createContext({
  location: { search: "" }, URLSearchParams, console, ort: { env: { wasm: {} } },
  document: { getElementById: () => element, body: element },
});
vm.runInContext(fs.readFileSync(process.argv[1], "utf8"), context);
const { expression, ...values } = JSON.parse(fs.readFileSync(0, "utf8"));
Object.assign(context, values);
console.log(JSON.stringify(vm.runInContext(expression, context)));
"""


def run_page(expression: str, **values):
    """The value of a JavaScript `expression` evaluated in the page's script, with `values` as globals."""
    if NODE is None:
        if os.environ.get("SAT_REQUIRE_BROWSER") == "1":
            pytest.fail("the web page's rule test needs node (apt-get install nodejs)")
        pytest.skip("the web page's rule test needs node")
    payload = json.dumps({"expression": expression, **values})
    result = subprocess.run(
        [NODE, "-e", RUNNER, str(WEB_DIR / "app.js")], input=payload, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def test_web_caption_length_equals_torch():
    eos = 2
    rows = generated_rows(eos)
    got = run_page("rows.map((ids) => captionLength(ids, eos))", rows=rows.tolist() + [[]], eos=eos)
    assert got == caption_lengths(torch.from_numpy(rows), eos).tolist() + [0]


def test_web_next_token_is_the_argmax_without_suppressed_tokens():
    """As transformers' greedy search with `SuppressTokensLogitsProcessor`: the first maximum of the logits once the
    suppressed ids are set to -inf (ties included: the logits are rounded so that many rows have them)."""
    generator = torch.Generator().manual_seed(0)
    logits = (torch.randn(200, 12, generator=generator) * 2).round()
    # None, one, two suppressed ids, and the row's own first maximum.
    rows = [(row, ([], [3], [0, 3], [int(row.argmax())])[index % 4]) for index, row in enumerate(logits)]
    got = run_page(
        "rows.map(([logits, suppressed]) => nextToken(logits, new Set(suppressed)))",
        rows=[[row.tolist(), ids] for row, ids in rows],
    )
    banned = [row.index_fill(0, torch.tensor(ids, dtype=torch.long), float("-inf")) for row, ids in rows]
    assert got == [int(row.argmax()) for row in banned]


def test_web_repeated_ngram_ends_equal_the_numpy_runtime():
    generator = np.random.default_rng(0)
    cases = [(generator.integers(0, 5, size=length).tolist(), size) for length in range(1, 12) for size in range(5)]
    got = run_page("rows.map(([ids, size]) => repeatedNgramEnds(ids, size))", rows=cases)
    assert got == [repeated_ngram_ends(np.array([ids]), size)[0] for ids, size in cases]
