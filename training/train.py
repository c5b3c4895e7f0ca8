"""Train a Show, Attend and Tell image captioner with Accelerate (one CPU, one GPU, or many processes).

```bash
# Built-in offline default: synthetic coloured-shape scenes, a few minutes on a laptop CPU. From the repository root,
# by path or by module name alike (`python training/train.py`, `accelerate launch training/train.py ...`).
python -m training.train --output_dir runs/shapes

# A local imagefolder data set (metadata.jsonl with a `captions` list), frozen pretrained encoder + feature cache.
accelerate launch -m training.train --dataset_name ../shared/data/coco-mini --output_dir runs/coco-mini

# Two data-parallel CPU processes (gloo). `accelerate launch --cpu --num_processes 2` starts only ONE process in
# accelerate 1.x; the torchrun launcher (`--multi_gpu`) plus this script's `--cpu` gives two.
accelerate launch --multi_gpu --num_processes 2 training/train.py --cpu --output_dir runs/shapes-ddp

# Continue a saved captioner with self-critical sequence training (CIDEr-D reward, training/scst.py).
accelerate launch -m training.train --model_name_or_path runs/coco-mini --scst --dataset_name ../shared/data/coco-mini \
    --output_dir runs/coco-mini-scst --learning_rate 5e-5

# Two-stage training: 10 epochs with the encoder frozen, then its top 2 blocks fine-tuned at 1e-4.
accelerate launch -m training.train --preset coco-karpathy --image_dir /data/coco --output_dir runs/coco \
    --fine_tune_encoder_after 10 --fine_tune_encoder_blocks 2 --encoder_learning_rate 1e-4 --with_tracking
```

The story: arguments -> data (errors in the data surface here, before any training) -> tokenizer from the training
captions -> model (pretrained backbone, frozen) -> feature cache of the frozen backbone -> AdamW + warmup/decay
schedule -> loop (gradient accumulation, clipping, mixed precision, checkpoints, exact resume) -> validation by
free-running beam search after every epoch (best model kept, early stopping) -> Hub-ready `--output_dir`.

Output: one progress bar and one line per epoch (training loss, validation metrics, time, checkpoint path) on the main
process; `--log_level info` (or TRANSFORMERS_VERBOSITY=info) adds the setup logs and Accelerate's checkpoint lines.

Resuming: `--resume_from_checkpoint` alone continues from the newest intact `OUTPUT_DIR/checkpoints/step_N` written
with the same options (or starts from scratch when there is none, so a preempted job can be relaunched with the same
command); give a folder to pick a checkpoint. Resumed runs end with the same weights as uninterrupted ones. A run never
starts in an OUTPUT_DIR that holds another run's checkpoints or trainer state unless `--overwrite_output_dir` lets it
delete them first, and it prunes only its own checkpoints.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path

import datasets
import torch
import transformers
from accelerate import Accelerator, DataLoaderConfiguration, DistributedDataParallelKwargs
from accelerate.logging import get_logger
from accelerate.utils import ProjectConfiguration, set_seed
from huggingface_hub.constants import HF_HOME
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_scheduler

import show_attend_tell.script_path  # noqa: F401  (runs by path too: see its docstring)
from show_attend_tell import (
    ShowAttendTellConfig,
    ShowAttendTellForConditionalGeneration,
    ShowAttendTellProcessor,
    build_image_processor,
    build_tokenizer,
    caption_images,
)
from show_attend_tell.backbones import load_pretrained_backbone
from training.args import parse_args
from training.checkpointing import (
    check_output_dir,
    delete_other_runs_work,
    resolve_checkpoint,
    resume_settings,
    save_checkpoint,
)
from training.collate import CaptionCollator, CaptionPairs, StreamingCaptionPairs
from training.data import load_caption_dataset
from training.feature_cache import build_feature_cache, weights_fingerprint
from training.hard_attention import HardAttentionLoss
from training.saved_model import load_saved_captioner
from training.scst import ScstStats, SelfCriticalLoss
from training.validation import caption_metrics, decoding_kwargs, model_loss, validation_loss

logger = get_logger(__name__)

ATTENTION_FIGURE = Path("figures") / "attention_example.png"


def load_data(args, accelerator):
    """Training and validation splits in the canonical form; bad examples raise here (or are skipped and counted)."""
    common = {
        "dataset_config_name": args.dataset_config_name,
        "preset": args.preset,
        "image_column": args.image_column,
        "caption_column": args.caption_column,
        "image_id_column": args.image_id_column,
        "image_dir": args.image_dir,
        "skip_bad_examples": args.skip_bad_examples,
        "cache_dir": args.cache_dir,
    }
    builtin = args.dataset_name is None and args.preset is None
    with accelerator.main_process_first():  # the main process fills the datasets cache, the others reuse it
        train_data = load_caption_dataset(
            args.dataset_name,
            args.train_split,
            streaming=args.streaming,
            **common,
            **({"shapes_num_images": args.max_train_samples} if builtin else {}),
        )
        eval_data = None
        if not args.no_validation:
            eval_data = load_caption_dataset(
                args.dataset_name,
                args.validation_split,
                **common,
                **({"shapes_num_images": args.max_eval_samples} if builtin else {}),
            )
    if args.max_train_samples is not None and args.streaming:
        train_data = train_data.take(args.max_train_samples)
    elif args.max_train_samples is not None and len(train_data) > args.max_train_samples:
        train_data = train_data.select(range(args.max_train_samples))
    if eval_data is not None and args.max_eval_samples is not None and len(eval_data) > args.max_eval_samples:
        eval_data = eval_data.select(range(args.max_eval_samples))
    return train_data, eval_data


def build_model(args, train_captions: list[str]):
    """Tokenizer from the training captions only, processor, and the model with its (pretrained) backbone."""
    tokenizer = build_tokenizer(
        train_captions,
        min_frequency=args.min_word_frequency,
        max_vocab_size=args.max_vocab_size,
        segmentation=args.tokenizer_segmentation,
    )
    processor = ShowAttendTellProcessor(build_image_processor(args.backbone, args.image_size), tokenizer)
    config = ShowAttendTellConfig(
        backbone=args.backbone,
        image_size=args.image_size,
        feature_index=args.feature_index,
        attention_dim=args.attention_dim,
        embed_dim=args.embed_dim,
        decoder_dim=args.decoder_dim,
        dropout=args.dropout,
        alpha_c=args.alpha_c,
        attention_entropy_weight=args.attention_entropy_weight,
        position_embedding=args.position_embedding,
        attention_temperature=args.attention_temperature,
        label_smoothing=args.label_smoothing,
        attention_type=args.attention_type,
        hard_expected_context_prob=args.hard_expected_context_prob,
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        unk_token_id=tokenizer.unk_token_id,
    )
    model = ShowAttendTellForConditionalGeneration(config)
    if args.pretrained_backbone:
        load_pretrained_backbone(model.encoder.backbone, args.backbone)
    return model, processor


def build_optimizer(args, model) -> torch.optim.Optimizer:
    """AdamW: the decoder (and attention, projections) at --learning_rate, the backbone blocks that will be
    fine-tuned at --encoder_learning_rate. No weight decay on biases and normalisation weights."""
    groups = []
    for is_backbone, learning_rate in ((False, args.learning_rate), (True, args.encoder_learning_rate)):
        params = [
            (name, param)
            for name, param in model.named_parameters()
            if param.requires_grad and name.startswith("encoder.backbone.") == is_backbone
        ]
        for decay in (True, False):
            selected = [param for _, param in params if (param.ndim >= 2) == decay]
            if selected:
                weight_decay = args.weight_decay if decay else 0.0
                groups.append({"params": selected, "lr": learning_rate, "weight_decay": weight_decay})
    return torch.optim.AdamW(groups, lr=args.learning_rate)


def set_stage(model, args, epoch: int, collator: CaptionCollator, eval_collator, feature_caches) -> bool:
    """Frozen encoder (decoder trains from cached features) before --fine_tune_encoder_after epochs, then the top
    --fine_tune_encoder_blocks blocks train too (from images). Returns whether the encoder is frozen."""
    fine_tune = args.fine_tune_encoder_after is not None and epoch >= args.fine_tune_encoder_after
    model.freeze_encoder(args.fine_tune_encoder_blocks if fine_tune else 0)
    collator.features = None if fine_tune else feature_caches[0]
    if eval_collator is not None:
        eval_collator.features = None if fine_tune else feature_caches[1]
    return not fine_tune


def write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=2, default=str) + "\n")


def set_up_logging(log_level: str, main_process: bool) -> None:
    """`log_level` for this script's, Accelerate's, Transformers' and Datasets' logs on the main process (errors only on
    the others); below info, the progress bars of Datasets and Transformers (loading, saving) are off too. An
    `ACCELERATE_LOG_LEVEL` set in the environment still applies to Accelerate's loggers (Accelerate sets it on each)."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    level = logging.getLevelName(log_level.upper()) if main_process else logging.ERROR
    for name in ("__main__", "training", "show_attend_tell", "model_card", "accelerate"):
        logging.getLogger(name).setLevel(level)
    datasets.utils.logging.set_verbosity(level)
    transformers.utils.logging.set_verbosity(level)
    if level > logging.INFO:
        datasets.disable_progress_bars()
        transformers.utils.logging.disable_progress_bar()
    else:
        datasets.enable_progress_bars()
        transformers.utils.logging.enable_progress_bar()


def epoch_line(epoch: int, train_loss: float | None, metrics: dict, seconds: float, checkpoint: Path | None) -> str:
    """The one line printed per epoch: `epoch 3 | train loss 2.1000 | BLEU-4 0.2100, ... | 41.2 s | checkpoint PATH`."""
    parts = [f"epoch {epoch}"]
    if train_loss is not None:
        parts.append(f"train loss {train_loss:.4f}")
    if metrics:
        parts.append(", ".join(f"{name} {value:.4f}" for name, value in metrics.items()))
    parts.append(f"{seconds:.1f} s")
    if checkpoint is not None:
        parts.append(f"checkpoint {checkpoint}")
    return " | ".join(parts)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    output_dir = Path(args.output_dir)

    # ------------------------------------------------------------------------------------------------------------
    # Accelerator, logging, seed
    # ------------------------------------------------------------------------------------------------------------
    fine_tuning_planned = args.fine_tune_encoder_after is not None
    accelerator = Accelerator(
        cpu=args.cpu,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=args.report_to if args.with_tracking else None,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "runs")),
        # The sampler's order depends only on (seed, epoch): identical on every process and after a resume.
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=args.seed),
        # Backbone blocks fine-tuned later are registered with DDP from the start but get no gradients before then.
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=fine_tuning_planned)],
    )
    set_up_logging(args.log_level, accelerator.is_local_main_process)
    logger.info(accelerator.state, main_process_only=False)

    if args.push_to_hub:  # fail before hours of training, not after (every process, so none waits for a dead one)
        from model_card.push import HubAccessError, check_hub_access

        try:
            check_hub_access(args.hub_model_id)
        except HubAccessError as error:
            raise SystemExit(f"--push_to_hub: {error}") from None
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    # Which run this is (resumed or new) and whether OUTPUT_DIR holds another run's work, decided before any data is
    # read and on every process, so that none waits for one that stopped (training/checkpointing.py).
    checkpoint, state = resolve_checkpoint(
        args.resume_from_checkpoint, output_dir, resume_settings(args), args.overwrite_output_dir
    )
    other_runs_work = check_output_dir(output_dir, state.run_id, args.overwrite_output_dir)
    accelerator.wait_for_everyone()
    if other_runs_work and accelerator.is_main_process:
        delete_other_runs_work(output_dir, other_runs_work)
    accelerator.wait_for_everyone()
    set_seed(args.seed)

    # ------------------------------------------------------------------------------------------------------------
    # Data, tokenizer, model
    # ------------------------------------------------------------------------------------------------------------
    train_data, eval_data = load_data(args, accelerator)
    if args.streaming:  # one pass over the stream's captions for the vocabulary
        train_captions = [row["captions"] for row in train_data.select_columns(["captions"])]
    else:
        train_captions = train_data["captions"]
    if args.model_name_or_path:  # its attention type, unless --attention_type changes it (the weights are the same)
        model, processor = load_saved_captioner(args)
        for name in ("attention_type", "hard_expected_context_prob"):
            if getattr(args, name) is not None:
                setattr(model.config, name, getattr(args, name))
            setattr(args, name, getattr(model.config, name))
    else:
        model, processor = build_model(args, [caption for captions in train_captions for caption in captions])
    decoding = decoding_kwargs(
        args.num_beams,
        args.max_new_tokens,
        args.length_penalty,
        processor.tokenizer.unk_token_id,
        args.no_repeat_ngram_size,
    )
    for name, value in decoding.items():
        setattr(model.generation_config, name, value)  # saved folders decode like validation did
    hard_attention = None
    if (
        model.config.attention_type == "hard"
    ):  # the REINFORCE and entropy terms of section 4.1 (training/hard_attention.py)
        hard_attention = HardAttentionLoss(
            accelerator, args.hard_reinforce_weight, args.hard_entropy_weight, args.hard_baseline_decay
        )
        accelerator.register_for_checkpointing(hard_attention)  # its reward baseline, for an exact resume
    self_critical = None
    if args.scst_after is not None:  # CIDEr-D document frequencies of the training references, computed once
        self_critical = SelfCriticalLoss(
            processor,
            train_captions,
            args.scst_samples,
            args.scst_baseline,
            args.scst_max_new_tokens,
            bleu_weight=args.scst_bleu_weight,
            temperature=args.scst_temperature,
        )
    logger.info(
        f"{len(train_captions)} training images ({sum(map(len, train_captions))} captions), "
        f"{len(eval_data) if eval_data is not None else 0} validation images, vocabulary of {len(processor.tokenizer)}"
    )

    # Blocks that will be fine-tuned must be trainable when the optimizer and DDP are set up; `set_stage` then
    # freezes them until their stage starts.
    model.freeze_encoder(args.fine_tune_encoder_blocks if fine_tuning_planned else 0)
    optimizer = build_optimizer(args, model)

    if args.streaming:
        collator = CaptionCollator(processor, max_length=args.max_caption_length)
        stream = train_data.shuffle(seed=args.seed, buffer_size=args.shuffle_buffer_size)
        train_dataloader = DataLoader(
            StreamingCaptionPairs(stream), batch_size=args.per_device_train_batch_size, collate_fn=collator
        )
    else:
        images = train_data.select_columns(["image"])
        collator = CaptionCollator(processor, images=images, max_length=args.max_caption_length)
        train_dataloader = DataLoader(
            CaptionPairs(train_captions),
            shuffle=True,
            batch_size=args.per_device_train_batch_size,
            collate_fn=collator,
            num_workers=args.dataloader_num_workers,
            generator=torch.Generator(),  # DataLoader's own seed draw must not touch the global RNG (dropout)
        )
    eval_collator, eval_dataloader = None, None
    if eval_data is not None:
        eval_collator = CaptionCollator(processor, images=eval_data.select_columns(["image"]))
        eval_dataloader = DataLoader(
            CaptionPairs(eval_data["captions"]),
            batch_size=args.per_device_eval_batch_size,
            collate_fn=eval_collator,
            num_workers=args.dataloader_num_workers,
        )

    # Each process gets every num_processes-th batch: count optimizer steps per epoch and process. A stream has no
    # length: its whole run counts as one epoch (the stream itself is passed over as often as needed).
    if args.streaming:
        num_update_steps_per_epoch = args.max_train_steps
    else:
        batches_per_process = math.ceil(len(train_dataloader) / accelerator.num_processes)
        num_update_steps_per_epoch = math.ceil(batches_per_process / args.gradient_accumulation_steps)
    if args.max_train_steps is None:
        args.max_train_steps = args.num_train_epochs * num_update_steps_per_epoch
    args.num_train_epochs = math.ceil(args.max_train_steps / num_update_steps_per_epoch)
    lr_scheduler = get_scheduler(  # the prepared scheduler steps once per process at every optimizer step
        name=args.lr_scheduler_type,
        optimizer=optimizer,
        num_warmup_steps=args.num_warmup_steps * accelerator.num_processes,
        num_training_steps=args.max_train_steps * accelerator.num_processes,
    )
    model, optimizer, train_dataloader, lr_scheduler = accelerator.prepare(
        model, optimizer, train_dataloader, lr_scheduler
    )
    if eval_dataloader is not None:
        eval_dataloader = accelerator.prepare(eval_dataloader)
    unwrapped = accelerator.unwrap_model(model)

    # ------------------------------------------------------------------------------------------------------------
    # Trackers, resume (before the feature cache, which must see the checkpoint's backbone weights)
    # ------------------------------------------------------------------------------------------------------------
    if args.with_tracking:
        tracked = {
            key: (value if isinstance(value, (int, float, str, bool)) else str(value))
            for key, value in vars(args).items()
        }
        accelerator.init_trackers("show_attend_tell", tracked)

    starting_epoch, resume_batches = 0, 0
    if checkpoint is not None:
        accelerator.print(f"Resuming from checkpoint {checkpoint}")
        accelerator.load_state(str(checkpoint))
        starting_epoch = state.completed_steps // num_update_steps_per_epoch
        resume_batches = (state.completed_steps % num_update_steps_per_epoch) * args.gradient_accumulation_steps

    # ------------------------------------------------------------------------------------------------------------
    # Feature cache of the frozen backbone (train and validation images)
    # ------------------------------------------------------------------------------------------------------------
    feature_caches = (None, None)
    frozen_epochs_ahead = args.fine_tune_encoder_after is None or starting_epoch < args.fine_tune_encoder_after
    if args.feature_cache != "none" and frozen_epochs_ahead and not args.streaming:
        cache_root = (
            Path(HF_HOME) / "show_attend_tell" / "feature_cache" if args.feature_cache == "auto" else args.feature_cache
        )
        with accelerator.main_process_first():
            feature_caches = tuple(
                build_feature_cache(
                    unwrapped,
                    processor,
                    data,
                    cache_root,
                    dataset_fingerprint=data._fingerprint,
                    batch_size=args.per_device_eval_batch_size,
                    progress=accelerator.is_local_main_process,
                )
                if data is not None
                else None
                for data in (train_data, eval_data)
            )

    total_batch_size = args.per_device_train_batch_size * accelerator.num_processes * args.gradient_accumulation_steps
    logger.info("***** Running training *****")
    logger.info(f"  Num examples (image, caption pairs) = {sum(map(len, train_captions))}")
    logger.info(f"  Num epochs = {args.num_train_epochs}")
    logger.info(f"  Total train batch size (parallel, distributed, accumulation) = {total_batch_size}")
    logger.info(f"  Total optimization steps = {args.max_train_steps}")
    progress_bar = tqdm(
        range(args.max_train_steps), initial=state.completed_steps, disable=not accelerator.is_local_main_process
    )
    higher_is_better = args.metric_for_best_model != "loss"
    stop_early = False

    def report(line: str) -> None:  # shown at every --log_level, below the progress bar
        if accelerator.is_main_process:
            tqdm.write(line)

    def validate(epoch: int, frozen: bool) -> tuple[dict, bool]:
        """Free-running beam search on the validation set, metrics, best model kept in OUTPUT_DIR; returns the metrics
        and whether early stopping is due."""
        metrics, predictions = caption_metrics(
            accelerator,
            model,
            processor,
            eval_data,
            args.per_device_eval_batch_size,
            decoding,
            features=feature_caches[1] if frozen else None,
        )
        metrics["loss"] = validation_loss(accelerator, model, eval_dataloader, frozen)
        model.train()
        state.history.append({"epoch": epoch, "step": state.completed_steps, **metrics})
        logger.info(f"epoch {epoch} captions: {list(predictions.items())[:3]}")
        if args.with_tracking:
            accelerator.log({f"eval/{name}": value for name, value in metrics.items()}, step=state.completed_steps)
        value = metrics[args.metric_for_best_model]
        improved = state.best_metric is None or (
            value > state.best_metric if higher_is_better else value < state.best_metric
        )
        stop = False
        if improved:
            state.best_metric, state.best_epoch, state.epochs_without_improvement = value, epoch, 0
            if accelerator.is_main_process:
                unwrapped.save_pretrained(output_dir)
                processor.save_pretrained(output_dir)
        else:
            state.epochs_without_improvement += 1
            stop = (
                args.early_stopping_patience is not None
                and state.epochs_without_improvement >= args.early_stopping_patience
            )
        accelerator.wait_for_everyone()
        return metrics, stop

    # A loaded captioner is validated before it trains (as "epoch -1"), so that the output folder keeps it when no
    # epoch of this run beats it (fine-tuning or SCST can make a good model worse).
    if args.model_name_or_path is not None and eval_data is not None and checkpoint is None:
        started = time.perf_counter()
        metrics, _ = validate(-1, set_stage(unwrapped, args, 0, collator, eval_collator, feature_caches))
        report(epoch_line(-1, None, metrics, time.perf_counter() - started, None) + " | the loaded model")

    # ------------------------------------------------------------------------------------------------------------
    # Training loop
    # ------------------------------------------------------------------------------------------------------------
    for epoch in range(starting_epoch, args.num_train_epochs):
        started, epoch_loss, epoch_batches = time.perf_counter(), 0.0, 0
        frozen = set_stage(unwrapped, args, epoch, collator, eval_collator, feature_caches)
        model.train()
        train_dataloader.set_epoch(epoch)
        active_dataloader = train_dataloader
        if epoch == starting_epoch and resume_batches:
            active_dataloader = accelerator.skip_first_batches(train_dataloader, resume_batches)
        running_loss, running_batches = 0.0, 0
        scst_stage = self_critical is not None and epoch >= args.scst_after
        stage_stats = ScstStats() if scst_stage else ScstStats(prefix="hard_")
        for batch in active_dataloader:
            with accelerator.accumulate(model):
                if scst_stage:  # self-critical sequence training (training/scst.py)
                    loss, stage_metrics = self_critical(model, batch, frozen)
                    stage_stats.add(stage_metrics)
                elif hard_attention is not None:  # stochastic hard attention (training/hard_attention.py)
                    loss, stage_metrics = hard_attention(model, batch, frozen)
                    stage_stats.add(stage_metrics)
                else:
                    loss = model_loss(model, batch, frozen)
                accelerator.backward(loss)
                if accelerator.sync_gradients and args.max_grad_norm:
                    accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad()
            running_loss += loss.detach().float()  # a tensor: no device sync per batch, only when logging
            running_batches += 1
            epoch_loss += loss.detach().float()
            epoch_batches += 1
            if not accelerator.sync_gradients:
                continue
            state.completed_steps += 1
            progress_bar.update(1)
            if state.completed_steps % args.logging_steps == 0:
                logs = {"loss": float(running_loss) / running_batches, "learning_rate": lr_scheduler.get_last_lr()[0]}
                if stage_stats.batches:
                    logs.update(stage_stats.means())
                    stage_stats = ScstStats(prefix=stage_stats.prefix)
                state.log_history.append({"step": state.completed_steps, "epoch": epoch, **logs})
                progress_bar.set_postfix(loss=f"{logs['loss']:.3f}", epoch=epoch)
                if args.with_tracking:
                    accelerator.log(
                        {f"train/{name}": value for name, value in logs.items()}, step=state.completed_steps
                    )
                running_loss, running_batches = 0.0, 0
            end_of_epoch = state.completed_steps % num_update_steps_per_epoch == 0
            done = state.completed_steps >= args.max_train_steps
            # A step checkpoint at an epoch's end waits for that epoch's validation (saved below).
            if isinstance(args.checkpointing_steps, int) and not (end_of_epoch or done):
                if state.completed_steps % args.checkpointing_steps == 0:
                    save_checkpoint(accelerator, output_dir, state, args.checkpoints_total_limit)
            if done:
                break

        metrics, saved = {}, None
        if eval_data is not None:
            metrics, stop_early = validate(epoch, frozen)
        state.train_runtime_s += time.perf_counter() - started
        if args.checkpointing_steps == "epoch" or (
            isinstance(args.checkpointing_steps, int) and state.completed_steps % args.checkpointing_steps == 0
        ):
            saved = save_checkpoint(accelerator, output_dir, state, args.checkpoints_total_limit)
        train_loss = float(epoch_loss) / epoch_batches if epoch_batches else None
        report(epoch_line(epoch, train_loss, metrics, time.perf_counter() - started, saved))
        if stop_early:
            patience = args.early_stopping_patience
            report(f"Early stopping: no {args.metric_for_best_model} improvement for {patience} epochs")
            break
        if state.completed_steps >= args.max_train_steps:
            break
    progress_bar.close()

    # ------------------------------------------------------------------------------------------------------------
    # Output folder: best model + processor, arguments, metrics, an attention figure; push
    # ------------------------------------------------------------------------------------------------------------
    accelerator.wait_for_everyone()
    if args.with_tracking:
        accelerator.end_training()
    if args.save_weights_hash:
        digest = weights_fingerprint(unwrapped)
        (output_dir / f"weights_hash_{accelerator.process_index}.txt").write_text(digest + "\n")
    summary = {
        "metric_for_best_model": args.metric_for_best_model,
        "best_epoch": state.best_epoch,
        "best": next((entry for entry in state.history if entry["epoch"] == state.best_epoch), None),
        "history": state.history,
        "completed_steps": state.completed_steps,
        "train_runtime_s": state.train_runtime_s,
    }
    if accelerator.is_main_process:
        if eval_data is None:  # no validation: the last weights are the model
            unwrapped.save_pretrained(output_dir)
            processor.save_pretrained(output_dir)
        write_json(output_dir / "training_args.json", vars(args))
        write_json(output_dir / "val_metrics.json", summary)
        state.save(output_dir)
        figure_data = eval_data if eval_data is not None else train_data
        save_attention_figure(output_dir, processor, next(iter(figure_data)))
        if args.push_to_hub:
            from model_card.push import push_folder

            push_folder(output_dir, args.hub_model_id, private=args.hub_private_repo)
    accelerator.wait_for_everyone()
    return summary


def save_attention_figure(output_dir: Path, processor, example: dict) -> None:
    """Caption a held-out image with the saved (best) model, decoding as its generation_config says, and draw the
    attention of every word."""
    from show_attend_tell.visualization import plot_attention

    model = ShowAttendTellForConditionalGeneration.from_pretrained(output_dir).eval()
    result = caption_images(model, processor, [example["image"]])[0]
    if not result.words:  # nothing to draw; the trained model itself is already saved
        logger.warning(f"Example {example['image_id']}: empty caption, no attention figure saved")
        return
    (output_dir / ATTENTION_FIGURE).parent.mkdir(parents=True, exist_ok=True)
    plot_attention(result, output_dir / ATTENTION_FIGURE)
    logger.info(f"Example {example['image_id']}: {result.text!r}, attention in {output_dir / ATTENTION_FIGURE}")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
