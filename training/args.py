"""Command-line arguments of `training/train.py`, in the style of transformers' `run_*_no_trainer.py` examples.

Every option can also come from a YAML or JSON file (`--config_file run.yaml`, keys are the option names without
the leading dashes); options given on the command line override the file.

Model-size options left unset get defaults that depend on the data: the built-in shapes set (no `--dataset_name`)
gets a small, fast setup that trains in minutes on a laptop CPU (see `BUILTIN_DEFAULTS`); real photo data sets get
the paper-sized model (`REAL_DATA_DEFAULTS`).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import yaml
from transformers import SchedulerType

from show_attend_tell.configuration_show_attend_tell import ATTENTION_TYPES, POSITION_EMBEDDINGS
from show_attend_tell.metrics import METRIC_NAMES
from show_attend_tell.processing_show_attend_tell import SEGMENTATIONS
from training.scst import BASELINES

# Defaults that depend on the data set: built-in shapes scenes vs. real photos.
BUILTIN_DEFAULTS: dict[str, Any] = {
    "backbone": "tf_efficientnet_lite0",
    "image_size": 128,  # 4x4 region grid, one cell per shape position of the generated scenes
    "feature_index": -1,  # the backbone's last feature map (stride 32)
    "attention_dim": 256,
    "embed_dim": 128,
    "decoder_dim": 256,
    "dropout": 0.3,
    "position_embedding": "none",
    "attention_temperature": 1.0,
    "num_train_epochs": 6,
    "per_device_train_batch_size": 32,
    "learning_rate": 2e-3,
    "num_warmup_steps": 50,
    "max_caption_length": 20,
}
REAL_DATA_DEFAULTS: dict[str, Any] = {
    "backbone": "tf_efficientnet_lite0",
    "image_size": 256,  # 8x8 region grid
    "feature_index": -1,
    "attention_dim": 512,
    "embed_dim": 512,
    "decoder_dim": 512,
    "dropout": 0.5,
    "position_embedding": "none",
    "attention_temperature": 1.0,
    "num_train_epochs": 20,
    "per_device_train_batch_size": 32,
    "learning_rate": 4e-4,
    "num_warmup_steps": 500,
    "max_caption_length": 40,
}
# Options that define the network; a saved captioner (--model_name_or_path) fixes them.
ARCHITECTURE_OPTIONS = (
    "backbone",
    "image_size",
    "feature_index",
    "attention_dim",
    "embed_dim",
    "decoder_dim",
    "dropout",
    "position_embedding",
    "attention_temperature",
)
# What validation computes: the caption metrics that are always computed (the library's table), and the loss.
METRIC_CHOICES = (*METRIC_NAMES, "loss")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")  # as TRANSFORMERS_VERBOSITY


def _checkpointing_steps(value: str) -> str | int:
    if value == "epoch":
        return value
    try:
        steps = int(value)
    except ValueError:
        steps = 0
    if steps < 1:
        raise argparse.ArgumentTypeError(f"expected 'epoch' or a positive number of steps, got {value!r}")
    return steps


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Train a Show, Attend and Tell image captioner with Accelerate.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--config_file", type=str, default=None, help="YAML or JSON file with default option values.")

    data = parser.add_argument_group("data")
    data.add_argument(
        "--dataset_name",
        type=str,
        default=None,
        help="Hub data set id or local folder (imagefolder layout with metadata.jsonl, or parquet files). "
        "Leave unset to train on the built-in synthetic shapes scenes (no download).",
    )
    data.add_argument("--dataset_config_name", type=str, default=None, help="Configuration name of the data set.")
    data.add_argument("--preset", type=str, default=None, help="Column layout preset: coco-karpathy, flickr8k, ...")
    data.add_argument("--image_column", type=str, default=None, help="Column with the images.")
    data.add_argument("--caption_column", type=str, default=None, help="Caption column(s), comma separated.")
    data.add_argument("--image_id_column", type=str, default=None, help="Column grouping the captions of an image.")
    data.add_argument("--image_dir", type=str, default=None, help="Folder that relative image paths refer to.")
    data.add_argument("--train_split", type=str, default="train")
    data.add_argument("--validation_split", type=str, default="validation")
    data.add_argument("--streaming", action="store_true", help="Stream the training split (needs --max_train_steps).")
    data.add_argument(
        "--skip_bad_examples",
        action="store_true",
        help="Drop unreadable images and bad captions (and report how many) instead of stopping with an error.",
    )
    data.add_argument("--shuffle_buffer_size", type=int, default=1000, help="Shuffle buffer of --streaming.")
    data.add_argument("--cache_dir", type=str, default=None, help="datasets cache folder.")
    data.add_argument("--max_train_samples", type=int, default=None, help="Use only the first N training images.")
    data.add_argument("--max_eval_samples", type=int, default=None, help="Validate on the first N images only.")
    data.add_argument(
        "--max_caption_length", type=int, default=None, help="Truncate training captions to N words (with <eos>)."
    )
    data.add_argument("--min_word_frequency", type=int, default=1, help="Rarer training words become <unk>.")
    data.add_argument("--max_vocab_size", type=int, default=None)
    data.add_argument(
        "--tokenizer_segmentation",
        choices=SEGMENTATIONS,
        default="word",
        help="word: one token per word (languages written with spaces); character: one per character, for any script "
        "(Chinese, Japanese, Thai, ...) and emoji. Saved with the processor.",
    )
    data.add_argument("--dataloader_num_workers", type=int, default=0)

    model = parser.add_argument_group("model (unset sizes depend on the data set, see training/args.py)")
    model.add_argument(
        "--model_name_or_path",
        type=str,
        default=None,
        help="Continue training a saved captioner (a folder or a Hub id): its weights, processor and tokenizer (no new "
        "vocabulary). Architecture options, if given, must match it.",
    )
    model.add_argument("--backbone", type=str, default=None, help="timm backbone name.")
    model.add_argument(
        "--image_size",
        type=int,
        nargs="+",
        default=None,
        metavar="SIZE",
        help="Image size fed to the backbone: one number for a square, or HEIGHT WIDTH (a non-square region grid).",
    )
    model.add_argument(
        "--feature_index",
        type=int,
        default=None,
        help="Which backbone feature map is the region grid (timm out_indices): -1 the last, -2 the one before "
        "(stride 16, a finer grid).",
    )
    model.add_argument("--attention_dim", type=int, default=None)
    model.add_argument("--embed_dim", type=int, default=None)
    model.add_argument("--decoder_dim", type=int, default=None)
    model.add_argument("--dropout", type=float, default=None)
    model.add_argument("--alpha_c", type=float, default=1.0, help="Weight of the doubly stochastic attention loss.")
    model.add_argument(
        "--attention_entropy_weight",
        type=float,
        default=0.0,
        help="Weight of an attention-sharpening penalty (not in the paper): the mean attention entropy as a fraction "
        "of a uniform map's (default 0: the paper's loss).",
    )
    model.add_argument(
        "--position_embedding",
        choices=POSITION_EMBEDDINGS,
        default=None,
        help="2-D position embedding added to each region's attention key (default: none, as in the paper).",
    )
    model.add_argument(
        "--attention_temperature",
        type=float,
        default=None,
        help="Attention weights are softmax(scores / T): below 1 sharper (default 1, as in the paper).",
    )
    model.add_argument("--label_smoothing", type=float, default=0.0)
    model.add_argument(
        "--attention_type",
        choices=ATTENTION_TYPES,
        default=None,
        help="soft: deterministic soft attention (paper 4.2); hard: stochastic hard attention (paper 4.1), trained "
        "with the REINFORCE rule of training/hard_attention.py (default: soft, or the saved model's).",
    )
    model.add_argument(
        "--pretrained_backbone",
        action="store_true",
        default=True,
        help="Start from ImageNet weights (offline for tf_efficientnet_lite0, else downloaded by timm).",
    )
    model.add_argument(
        "--no_pretrained_backbone", dest="pretrained_backbone", action="store_false", help="Random backbone weights."
    )

    train = parser.add_argument_group("training")
    train.add_argument(
        "--output_dir",
        type=str,
        required=True,
        help="Where the model, checkpoints and logs go. A folder holding another run's checkpoints or trainer state is "
        "refused (resume that run, or see --overwrite_output_dir).",
    )
    train.add_argument(
        "--overwrite_output_dir",
        action="store_true",
        help="Delete another run's checkpoints and trainer state in --output_dir and start there; its model files are "
        "replaced when this run saves.",
    )
    train.add_argument("--num_train_epochs", type=int, default=None)
    train.add_argument("--max_train_steps", type=int, default=None, help="Overrides --num_train_epochs if set.")
    train.add_argument("--per_device_train_batch_size", type=int, default=None)
    train.add_argument("--per_device_eval_batch_size", type=int, default=32)
    train.add_argument("--learning_rate", type=float, default=None, help="Learning rate of the decoder.")
    train.add_argument(
        "--encoder_learning_rate", type=float, default=1e-4, help="Learning rate of fine-tuned encoder blocks."
    )
    train.add_argument("--weight_decay", type=float, default=0.0)
    train.add_argument(
        "--lr_scheduler_type", type=str, default="cosine", choices=[scheduler.value for scheduler in SchedulerType]
    )
    train.add_argument("--num_warmup_steps", type=int, default=None)
    train.add_argument("--gradient_accumulation_steps", type=int, default=1)
    train.add_argument("--max_grad_norm", type=float, default=5.0)
    train.add_argument(
        "--mixed_precision",
        type=str,
        default=None,
        choices=["no", "fp16", "bf16", "fp8"],
        help="Overrides the `accelerate launch` / accelerate config setting.",
    )
    train.add_argument("--seed", type=int, default=42)
    train.add_argument(
        "--cpu",
        action="store_true",
        help="Train on the CPU even if a GPU is present; under a multi-process launcher (torchrun, `accelerate launch "
        "--multi_gpu`) the processes then talk through gloo.",
    )
    train.add_argument(
        "--fine_tune_encoder_after",
        type=int,
        default=None,
        help="Epochs of frozen-encoder training before the top encoder blocks are fine-tuned (unset: never).",
    )
    train.add_argument("--fine_tune_encoder_blocks", type=int, default=2, help="Top encoder blocks to fine-tune.")
    train.add_argument(
        "--feature_cache",
        type=str,
        default="auto",
        help="Folder for cached frozen-encoder features ('auto': $HF_HOME/show_attend_tell/feature_cache; 'none').",
    )

    checkpoints = parser.add_argument_group("checkpoints and logging")
    checkpoints.add_argument(
        "--checkpointing_steps",
        type=_checkpointing_steps,
        default="epoch",
        help="Save the training state every N optimizer steps, or at the end of every 'epoch'.",
    )
    checkpoints.add_argument("--checkpoints_total_limit", type=int, default=2, help="Keep only the newest N.")
    checkpoints.add_argument(
        "--resume_from_checkpoint",
        type=str,
        nargs="?",
        const="latest",
        default=None,
        help="A checkpoint folder, or 'latest' (the flag alone): the newest intact one in OUTPUT_DIR/checkpoints that "
        "was written with the same options (damaged ones are skipped and logged). 'latest' starts from scratch when "
        "there is no checkpoint, and stops naming the differences when none fits (unless --overwrite_output_dir).",
    )
    checkpoints.add_argument("--with_tracking", action="store_true", help="Log to the trackers of --report_to.")
    checkpoints.add_argument("--report_to", type=str, default="tensorboard", help="tensorboard, wandb, all, ...")
    checkpoints.add_argument("--logging_steps", type=int, default=10, help="Log the training loss every N steps.")
    checkpoints.add_argument(
        "--log_level",
        choices=LOG_LEVELS,
        default=os.environ.get("TRANSFORMERS_VERBOSITY", "warning"),
        help="Detail logged on the main process by this script and by Accelerate, Transformers and Datasets (default: "
        "$TRANSFORMERS_VERBOSITY, else warning). Other processes log errors only. The progress bar and the line per "
        "epoch (metrics, time, checkpoint) are always shown.",
    )
    checkpoints.add_argument("--push_to_hub", action="store_true")
    checkpoints.add_argument("--hub_model_id", type=str, default=None, help="Repository for --push_to_hub.")
    checkpoints.add_argument("--hub_private_repo", action="store_true")
    checkpoints.add_argument(
        "--save_weights_hash",
        action="store_true",
        help="Each process writes the hash of its final weights to OUTPUT_DIR/weights_hash_<rank>.txt (for tests).",
    )

    hard = parser.add_argument_group("stochastic hard attention (--attention_type hard, training/hard_attention.py)")
    hard.add_argument(
        "--hard_expected_context_prob",
        type=float,
        default=None,
        help="Probability that a caption trains with the expected (soft) context instead of sampled locations "
        "(default: the paper's 0.5, or the saved model's).",
    )
    hard.add_argument(
        "--hard_reinforce_weight",
        type=float,
        default=1.0,
        help="lambda_r of the REINFORCE term (the paper gives no value; 1 is the unbiased gradient of the bound).",
    )
    hard.add_argument(
        "--hard_entropy_weight",
        type=float,
        default=0.002,
        help="lambda_e of the entropy bonus on alpha (the paper gives no value; 0.002 is the authors' code's).",
    )
    hard.add_argument(
        "--hard_baseline_decay",
        type=float,
        default=0.9,
        help="Moving-average baseline b_k = decay * b_(k-1) + (1 - decay) * reward_k (the paper's 0.9).",
    )

    scst = parser.add_argument_group("self-critical sequence training (CIDEr-D reward, training/scst.py)")
    scst.add_argument(
        "--scst", action="store_true", help="Self-critical training from the start (needs --model_name_or_path)."
    )
    scst.add_argument(
        "--scst_after", type=int, default=None, help="Epochs of cross-entropy training, then self-critical training."
    )
    scst.add_argument("--scst_samples", type=int, default=5, help="Captions sampled per image.")
    scst.add_argument(
        "--scst_baseline",
        choices=BASELINES,
        default="greedy",
        help="greedy: reward of the greedy caption (Rennie et al.); mean: mean reward of the image's other samples",
    )
    scst.add_argument(
        "--scst_max_new_tokens", type=int, default=None, help="Longest sampled caption (default: --max_new_tokens)."
    )
    scst.add_argument(
        "--scst_bleu_weight",
        type=float,
        default=0.0,
        help="Reward = CIDEr-D + this weight x sentence BLEU-4 (0: CIDEr-D alone, as in Rennie et al.).",
    )
    scst.add_argument(
        "--scst_temperature",
        type=float,
        default=1.0,
        help="Sampling temperature (1: the model's own distribution, as in Rennie et al.; below 1, samples closer to "
        "the greedy caption; the loss uses the log-probabilities of the tempered distribution they came from).",
    )

    validation = parser.add_argument_group("validation")
    validation.add_argument("--num_beams", type=int, default=3)
    validation.add_argument("--max_new_tokens", type=int, default=30)
    validation.add_argument("--length_penalty", type=float, default=1.0)
    validation.add_argument(
        "--no_repeat_ngram_size",
        type=int,
        default=0,
        help="Never repeat an n-gram of this many words in a caption (transformers' generate option; 0: off).",
    )
    validation.add_argument("--metric_for_best_model", type=str, default="CIDEr", choices=METRIC_CHOICES)
    validation.add_argument(
        "--early_stopping_patience", type=int, default=None, help="Stop after N epochs without improvement."
    )
    validation.add_argument("--no_validation", action="store_true", help="Skip validation (the last epoch is kept).")
    return parser


def read_config_file(path: str | Path, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """Option values from a YAML or JSON file, checked against the parser's option names."""
    path = Path(path)
    if not path.is_file():
        raise SystemExit(f"--config_file {path}: file not found")
    text = path.read_text()
    try:
        values = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise SystemExit(f"--config_file {path}: cannot parse it ({error})") from None
    values = values or {}
    if not isinstance(values, dict):
        raise SystemExit(f"--config_file {path}: expected a mapping of option names to values, got {type(values)}")
    known = {action.dest for action in parser._actions}
    unknown = sorted(set(values) - known)
    if unknown:
        raise SystemExit(f"--config_file {path}: unknown option(s) {unknown}")
    return values


def check_scst_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Self-critical options that cannot work together; `--scst` becomes `--scst_after 0`."""
    if args.scst and args.scst_after is not None:
        parser.error("--scst (self-critical from the start) and --scst_after N exclude each other; give one")
    if args.scst and args.model_name_or_path is None:
        parser.error(
            "--scst needs --model_name_or_path (a trained captioner); or use --scst_after N to train with "
            "cross-entropy for N epochs first"
        )
    if args.scst:
        args.scst_after = 0
    if args.scst_after is None:
        return
    if args.scst_after < 0:
        parser.error(f"--scst_after must be at least 0, got {args.scst_after}")
    if args.streaming:
        parser.error("--scst/--scst_after need every image's references: not available with --streaming")
    minimum = 2 if args.scst_baseline == "mean" else 1
    if args.scst_samples < minimum:
        parser.error(
            f"--scst_samples must be at least {minimum} with --scst_baseline {args.scst_baseline}, "
            f"got {args.scst_samples}"
        )
    if not args.scst_bleu_weight >= 0:
        parser.error(f"--scst_bleu_weight must be a number >= 0, got {args.scst_bleu_weight}")
    if not args.scst_temperature > 0:
        parser.error(f"--scst_temperature must be a number > 0, got {args.scst_temperature}")
    if args.scst_max_new_tokens is None:
        args.scst_max_new_tokens = args.max_new_tokens


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse options (config file first, command line on top) and fill in the data-dependent defaults."""
    parser = build_parser()
    known, _ = parser.parse_known_args(argv)
    if known.config_file:
        parser.set_defaults(**read_config_file(known.config_file, parser))
    args = parser.parse_args(argv)
    args.lr_scheduler_type = SchedulerType(args.lr_scheduler_type)

    builtin = args.dataset_name is None and args.preset is None
    for name, value in (BUILTIN_DEFAULTS if builtin else REAL_DATA_DEFAULTS).items():
        # A saved captioner brings its own architecture (checked against the options given, in training/saved_model.py).
        if getattr(args, name) is None and not (args.model_name_or_path and name in ARCHITECTURE_OPTIONS):
            setattr(args, name, value)

    if isinstance(args.image_size, (list, tuple)):  # the command line gives a list; a config file an int or a list
        if len(args.image_size) not in (1, 2) or min(args.image_size) < 1:
            parser.error(f"--image_size takes SIZE or HEIGHT WIDTH (positive integers), got {args.image_size}")
        args.image_size = args.image_size[0] if len(args.image_size) == 1 else list(args.image_size)
    if args.attention_temperature is not None and not args.attention_temperature > 0:
        parser.error(f"--attention_temperature must be positive, got {args.attention_temperature}")
    if args.attention_entropy_weight < 0:
        parser.error(f"--attention_entropy_weight must be 0 (off) or more, got {args.attention_entropy_weight}")
    for name in ("num_train_epochs", "per_device_train_batch_size", "per_device_eval_batch_size", "num_beams"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.no_repeat_ngram_size < 0:
        parser.error(f"--no_repeat_ngram_size must be 0 (off) or more, got {args.no_repeat_ngram_size}")
    for name in ("max_train_steps", "max_train_samples", "max_eval_samples", "gradient_accumulation_steps"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.streaming and args.max_train_steps is None:
        parser.error("--streaming needs --max_train_steps (a stream has no known length)")
    if args.hard_expected_context_prob is not None and not 0 <= args.hard_expected_context_prob <= 1:
        parser.error(f"--hard_expected_context_prob must be in [0, 1], got {args.hard_expected_context_prob}")
    if not 0 <= args.hard_baseline_decay < 1:
        parser.error(f"--hard_baseline_decay must be in [0, 1), got {args.hard_baseline_decay}")
    if args.model_name_or_path is None:  # a saved captioner keeps its own unless these are given
        args.attention_type = args.attention_type or "soft"
        if args.hard_expected_context_prob is None:
            args.hard_expected_context_prob = 0.5
    check_scst_args(parser, args)
    if args.push_to_hub and args.hub_model_id is None:
        args.hub_model_id = Path(args.output_dir).resolve().name
    return args


__all__ = [
    "ARCHITECTURE_OPTIONS",
    "BUILTIN_DEFAULTS",
    "METRIC_CHOICES",
    "REAL_DATA_DEFAULTS",
    "build_parser",
    "parse_args",
]
