"""Start training from a saved captioner (`--model_name_or_path`: a folder or a Hub id).

The model, its processor and its tokenizer are loaded as saved (no new vocabulary: the loaded word ids are the ones
the weights were trained on). Architecture options given on the command line must agree with the saved config;
unset ones take the saved values, so `training_args.json` records the network that was actually trained.
"""

from __future__ import annotations

import argparse

from show_attend_tell import ModelFolderError, load_captioner
from training.args import ARCHITECTURE_OPTIONS


def check_architecture(args: argparse.Namespace, config) -> None:
    """Raise `SystemExit` naming every architecture option that contradicts the saved `config`."""
    conflicts = [
        f"--{name} {getattr(args, name)} (the saved model has {getattr(config, name)})"
        for name in ARCHITECTURE_OPTIONS
        if getattr(args, name) is not None and getattr(args, name) != getattr(config, name)
    ]
    if conflicts:
        raise SystemExit(
            f"--model_name_or_path {args.model_name_or_path}: {', '.join(conflicts)}; leave these options out to "
            "continue with the saved architecture"
        )


def load_saved_captioner(args: argparse.Namespace):
    """`(model, processor)` from `args.model_name_or_path`, after checking the architecture options against it."""
    try:  # the library's classes, not the folder's copy of their code
        model, processor = load_captioner(
            args.model_name_or_path, label=f"--model_name_or_path {args.model_name_or_path}", trust_remote_code=False
        )
    except ModelFolderError as error:  # one line, as `show-attend-tell caption` says it
        raise SystemExit(str(error)) from None
    check_architecture(args, model.config)
    for name in ARCHITECTURE_OPTIONS:
        setattr(args, name, getattr(model.config, name))
    return model, processor


__all__ = ["check_architecture", "load_saved_captioner"]
