"""The trainer: one recipe (`recipes.py`) → a trained task adapter, never losing a run.

`Trainer` loads the base model (optionally with a 4-bit backbone, QLoRA), adds the recipe's task
adapter (peft LoRA on the frozen backbone, task modules trained fully; `joint` trains one adapter
over several tasks), fills the encoder cache, and runs AdamW under accelerate, so the same code
runs on one CPU process or as `accelerate launch` on many devices. Each optimiser step takes
`grad_accumulation` length-bucketed batches from the seeded `BatchStream`; process `r` of `W`
takes stream positions `r, r + W, …`. With the CTC aid, the first `ctc.warmup_steps` train only
the projector by CTC (no LLM pass), then CTC stays as an auxiliary loss. The CTC head is the
model's `ctc`, an optional ASR task module, so the adapter carries it (for joint decoding): a new
head over the training transcripts' tokens, or the one `init_from`'s adapter brought, extended by
the tokens it lacks (another language's transcripts, new sentences).

Nothing is lost: checkpoints are atomic and verified (`checkpoints.py`), `resume=True` continues
from the newest sound one exactly (weights, optimiser, scheduler, every RNG, stream position), and
SIGTERM or SIGINT (Ctrl-C) finishes the current step, checkpoints and returns. Progress shows in a bar; every
`log_every` steps a line goes to `metrics.jsonl` (losses per task, lr, tokens/s, padded fraction,
peak memory); every `dev.every` steps the dev WER, and the adapter of the lowest so far goes to
`<output>/best-adapter/`. At the end, or on such a stop, the adapter is saved to
`<output>/adapter/` in the layout `adapters.load_task_adapter` reads. `init_from` starts
the adapter from a saved one (e.g. audio-aware GER from the ASR adapter) instead of from scratch.

Checkpoints of runs started before the CTC head moved into the model name its weights `ctc.*`
(not `model.ctc.*`); they resume all the same. Resuming a finished run trains nothing and writes
its adapter again from the last checkpoint: how such a run's adapter gets the CTC head its
checkpoints hold (`unispeech train --config RECIPE --resume` once more after it ends).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import resource
import signal
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator, DistributedDataParallelKwargs
from accelerate.utils import gather_object
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm
from transformers import get_scheduler

from unispeech.data.manifest import DEFAULT_LANGUAGE, Utterance, read_manifest
from unispeech.evaluation.metrics import word_error_rate
from unispeech.evaluation.reliance import audio_reliance
from unispeech.files import atomic_write_text
from unispeech.model.adapters import SAVE_DTYPES, add_task_adapter, default_lora_config, save_task_adapter
from unispeech.model.ctc import CtcHead
from unispeech.model.modeling import UnispeechLMModel
from unispeech.model.processor import AsrSample, UnispeechLMProcessor
from unispeech.model.sequences import ASR, TASKS
from unispeech.tasks.transcription import TranscriptionOptions, transcribe
from unispeech.training.augmentation import TimeMasking, mask_time
from unispeech.training.checkpoints import checkpoints, latest_checkpoint, prune, publish, staging_folder
from unispeech.training.data import Example, TrainingData
from unispeech.training.feature_cache import FeatureCache
from unispeech.training.recipes import JOINT_TASK, Recipe, recipe_from_dict

logger = logging.getLogger(__name__)

TINY_MODEL = "tiny"  # a recipe's `model: tiny` is the random test model of `unispeech.testing`
TRAINABLE_FILE = "trainable.safetensors"
STATE_FILE = "state.pt"
TRAINER_FILE = "trainer.json"
METRICS_FILE = "metrics.jsonl"
ADAPTER_FOLDER = "adapter"
BEST_ADAPTER_FOLDER = "best-adapter"  # the adapter of the lowest dev WER so far, decoded as users decode
CHECKPOINT_FOLDER = "checkpoints"
CARD_FILE = "training.json"  # beside each saved adapter: its recipe, steps and (best) dev WER
# Recipe fields a resumed run may change; any other change would not continue the same run.
RESUMABLE_CHANGES = (
    "steps",
    "dev",
    "log_every",
    "checkpoint_every",
    "keep_checkpoints",
    "output",
    "save_dtype",
)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)  # finish the step, checkpoint, save the adapter
BNB_SKIP_MODULES = ["encoder", "projector", "markers", "flow", "lm_head"]  # kept in full precision
LEGACY_CTC_PREFIX = "ctc."  # the CTC head's checkpoint names when it was the TrainingModule's own


@dataclass
class TrainResult:
    step: int
    adapter: Path | None  # None on processes other than the main one
    stopped: bool


class TrainingModule(nn.Module):
    """The model's losses (its CTC head's too) under one forward, so that distributed training
    sees one call."""

    def __init__(self, model: UnispeechLMModel, time_masks: TimeMasking | None = None):
        super().__init__()
        self.model, self.time_masks = model, time_masks or TimeMasking()

    def forward(
        self,
        batch: dict[str, torch.Tensor],
        ctc_targets: list[list[int]] | None,
        ctc_weight: float,
        ctc_only: bool,
        generator: torch.Generator | None,
    ) -> dict[str, torch.Tensor]:
        losses: dict[str, torch.Tensor] = {}
        if "encoder_states" in batch and generator is not None:
            batch["encoder_states"] = mask_time(
                batch["encoder_states"], batch["encoder_lengths"], self.time_masks, generator
            )
        if ctc_only and "encoder_states" in batch:
            speech = self.model.project_speech(batch["encoder_states"], batch["encoder_lengths"])
        elif ctc_only:
            speech = self.model.encode_speech(batch["input_features"], batch["feature_lengths"])
        else:
            output = self.model(**batch, generator=generator)
            speech = (output.speech_embeddings, output.speech_lengths)
            losses.update(
                {
                    name: getattr(output, name)
                    for name in ("text_loss", "tts_loss", "prior_loss", "duration_loss")
                    if getattr(output, name) is not None
                }
            )
        ctc = self.model.ctc
        if ctc is not None and ctc_targets is not None and (ctc_only or ctc_weight > 0):
            log_probs = ctc(speech[0], self.model.backbone.get_input_embeddings())
            losses["ctc_loss"] = ctc.loss(log_probs, speech[1], ctc_targets)
        weights = {"ctc_loss": 1.0 if ctc_only else ctc_weight}
        losses["loss"] = sum(weights.get(name, 1.0) * value for name, value in losses.items())
        return losses


class Trainer:
    def __init__(
        self,
        recipe: Recipe,
        resume: bool = False,
        show_progress: bool = True,
        on_step: Callable[[int], None] | None = None,
    ):
        self.recipe, self.resume, self.show_progress, self.on_step = recipe, resume, show_progress, on_step
        self.output = Path(recipe.output)
        self.stop_requested = False

    # ------------------------------------------------------------------------------------ set-up

    def _load_model(self) -> tuple[UnispeechLMModel, UnispeechLMProcessor]:
        recipe = self.recipe
        if recipe.model == TINY_MODEL:
            if recipe.qlora:
                raise ValueError(
                    "qlora: true needs a saved model to load in 4 bits (a path or a cached name such "
                    "as smol); the random tiny model is built in memory: save it first (tests use "
                    "unispeech.testing.tiny_model(...).save_pretrained) or set qlora: false"
                )
            from unispeech.testing import tiny_model

            with torch.random.fork_rng():
                torch.manual_seed(recipe.seed)
                return tiny_model()
        from unispeech.weights.pretrained import load_parts

        kwargs = {}
        if recipe.qlora:
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_compute_dtype=torch.bfloat16 if self._precision() == "bf16" else torch.float32,
                llm_int8_skip_modules=BNB_SKIP_MODULES,
            )
        parts = load_parts(recipe.model, **kwargs)
        return parts.model, parts.processor

    def _precision(self) -> str:
        """fp32 on CPUs (bf16 is 3.5× slower on this kind of CPU, NOTES.md), bf16 on GPUs that have it."""
        if self.recipe.precision != "auto":
            return self.recipe.precision
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"

    def _add_adapter(self, model: UnispeechLMModel) -> None:
        lora = self.recipe.lora
        default = default_lora_config(model)
        config = dataclasses.replace(
            default,
            r=lora.rank,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=list(lora.targets) if lora.targets else default.target_modules,
        )
        modules = None
        if self.recipe.task == JOINT_TASK:
            modules = tuple(
                dict.fromkeys(
                    module
                    for task in self.recipe.tasks
                    for module in TASKS[task].task_modules + TASKS[task].optional_modules
                )
            )
        add_task_adapter(model, self.recipe.task, config, modules, start_from=self.recipe.init_from)

    def _check_resumable(self, saved: dict) -> None:
        current = self.recipe.to_dict()
        # A field added since the checkpoint was written counts at its default, as the run had it; a
        # field since removed or renamed fails to parse and is compared as saved, so the change is named.
        with suppress(ValueError):
            saved = json.loads(json.dumps(recipe_from_dict(saved).to_dict()))
        changed = sorted(
            key
            for key in current
            if key not in RESUMABLE_CHANGES and saved.get(key) != json.loads(json.dumps(current[key]))
        )
        if changed:
            raise ValueError(
                f"the recipe changed since the checkpoint in {self.output} ({', '.join(changed)}): "
                "resume with the recipe it was started with, or train into a new output folder"
            )

    # ---------------------------------------------------------------------------------- training

    def train(self) -> TrainResult:
        recipe = self.recipe
        accelerator = Accelerator(
            # on a machine without GPUs, several processes (torchrun) train over gloo
            cpu=not torch.cuda.is_available(),
            mixed_precision={"fp32": "no"}.get(self._precision(), self._precision()),
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
        )
        rank, world = accelerator.process_index, accelerator.num_processes
        _seed_everything(recipe.seed + rank)
        model, processor = self._load_model()
        model.train()
        model.encoder.eval()  # frozen, and never in training mode
        self._add_adapter(model)
        if recipe.gradient_checkpointing:
            model.backbone.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False}
            )

        data = TrainingData(recipe, processor)
        cache = None
        audio_files = data.audio_files()
        if recipe.cache_features and audio_files:
            from unispeech.weights.cache import cache_root

            cache = FeatureCache(recipe.feature_cache or cache_root() / "features", model.encoder)
            with accelerator.main_process_first():
                cache.fill(audio_files, processor, show_progress=self.show_progress and rank == 0)
        ctc = None
        if recipe.ctc.warmup_steps or recipe.ctc.weight:
            token_ids = {t for text in data.transcripts() for t in processor.tokenize(text)}
            if model.ctc is None:
                model.ctc = CtcHead(token_ids, model.config.text_config.hidden_size)
            else:  # init_from's, with the tokens these transcripts need and it lacks
                missing = token_ids - set(model.ctc.token_ids.tolist())
                logger.info(
                    "continuing the CTC head of %s (%d tokens, %d added)",
                    recipe.init_from,
                    len(model.ctc.token_ids),
                    len(missing),
                )
                if missing:
                    model.ctc = model.ctc.extended(missing)
            ctc = model.ctc
        module = TrainingModule(model, recipe.time_masks)

        lora_params = [p for n, p in module.named_parameters() if p.requires_grad and "lora_" in n]
        other_params = [p for n, p in module.named_parameters() if p.requires_grad and "lora_" not in n]
        settings = recipe.optimizer
        optimizer = torch.optim.AdamW(
            [{"params": lora_params, "lr": settings.lr}, {"params": other_params, "lr": settings.module_lr}],
            betas=settings.betas,
            weight_decay=settings.weight_decay,
        )
        scheduler = get_scheduler(
            # transformers' "constant" ignores the warm-up; the recipe's warmup_steps must hold
            {"constant": "constant_with_warmup"}.get(settings.schedule, settings.schedule),
            optimizer,
            num_warmup_steps=settings.warmup_steps,
            num_training_steps=recipe.steps,
        )
        generator = torch.Generator().manual_seed(recipe.seed + rank)  # flow-matching draws
        step = 0
        stream = data.stream()
        best_dev_wer = None  # the best adapter's, carried over a resume by its card
        if self.resume:
            step = self._restore(accelerator, module, optimizer, scheduler, generator)
            best_dev_wer = _read_card(self.output / BEST_ADAPTER_FOLDER).get("dev_wer")
        elif checkpoints(self.output / CHECKPOINT_FOLDER):
            raise FileExistsError(
                f"{self.output} already holds checkpoints: "
                "pass --resume to continue, or choose another output"
            )
        stream.seek(step * recipe.grad_accumulation * world)
        module, optimizer, scheduler = accelerator.prepare(module, optimizer, scheduler)
        if accelerator.is_main_process:
            self.output.mkdir(parents=True, exist_ok=True)
            _truncate_metrics(self.output / METRICS_FILE, step)

        trainable = {n: p for n, p in accelerator.unwrap_model(module).named_parameters() if p.requires_grad}
        logger.info(
            "training %s (%s) for %d steps: %.2f M trainable parameters, %d examples from %d sources",
            recipe.task,
            recipe.model,
            recipe.steps,
            sum(p.numel() for p in trainable.values()) / 1e6,
            sum(len(s) for s in data.sources),
            len(data.sources),
        )
        previous = {}
        if threading.current_thread() is threading.main_thread():  # handlers can only be set there
            previous = {signum: signal.signal(signum, self._request_stop) for signum in STOP_SIGNALS}
        bar = tqdm(
            total=recipe.steps,
            initial=step,
            desc=f"train {recipe.task}",
            unit="step",
            disable=not (self.show_progress and accelerator.is_main_process),
        )
        window = _Window()
        try:
            while step < recipe.steps:
                warmup = step < recipe.ctc.warmup_steps
                optimizer.zero_grad(set_to_none=True)
                for micro in range(recipe.grad_accumulation):
                    for _ in range(rank):
                        next(stream)
                    source, indices = next(stream)
                    for _ in range(world - 1 - rank):
                        next(stream)
                    examples, samples = data.samples(source, indices, cache)
                    batch = processor(samples).to(accelerator.device)
                    targets = _ctc_targets(ctc, processor, examples)
                    sync = micro == recipe.grad_accumulation - 1
                    context = nullcontext() if sync else accelerator.no_sync(module)
                    with context:
                        ctc_only = warmup and targets is not None
                        losses = module(dict(batch), targets, recipe.ctc.weight, ctc_only, generator)
                        accelerator.backward(losses["loss"] / recipe.grad_accumulation)
                    window.add(recipe.sources[source].task, losses, batch["attention_mask"])
                accelerator.clip_grad_norm_(list(trainable.values()), settings.max_grad_norm)
                optimizer.step()
                scheduler.step()
                step += 1
                bar.update(1)
                if self.on_step is not None:
                    self.on_step(step)
                stop = self._agree_to_stop(accelerator)
                if step % recipe.log_every == 0 or step == recipe.steps or stop:
                    record = window.flush(step, scheduler.get_last_lr(), accelerator)
                    bar.set_postfix(loss=f"{record['loss']:.3f}", pad=f"{record['padded_fraction']:.1%}")
                    self._log(accelerator, record)
                if recipe.dev.manifest and (step % recipe.dev.every == 0 or step == recipe.steps):
                    record = self._dev(accelerator, module, processor, step, warmup)
                    self._log(accelerator, record)
                    wer = record.get("dev_wer") if record.get("dev_decoder") != "ctc" else None  # main only
                    if wer is not None and (best_dev_wer is None or wer < best_dev_wer):
                        best_dev_wer = wer
                        self._save_adapter(accelerator, module, BEST_ADAPTER_FOLDER, step, dev_wer=wer)
                if step % recipe.checkpoint_every == 0 or step == recipe.steps or stop:
                    self._save(accelerator, module, optimizer, scheduler, generator, step)
                if stop:
                    logger.warning("stopped at step %d; --resume continues from here", step)
                    break
        finally:
            bar.close()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        # written on a stop too, so that an interrupted run can be tried out
        adapter = self._save_adapter(accelerator, module, ADAPTER_FOLDER, step)
        accelerator.wait_for_everyone()
        return TrainResult(step=step, adapter=adapter, stopped=step < recipe.steps)

    # ------------------------------------------------------------------------------ stop, log, dev

    def _request_stop(self, signum, frame) -> None:
        logger.warning("%s received: finishing this step, then checkpointing", signal.Signals(signum).name)
        self.stop_requested = True

    def _agree_to_stop(self, accelerator: Accelerator) -> bool:
        """Whether any process was asked to stop (all stop together, at the same step)."""
        flag = torch.tensor([float(self.stop_requested)], device=accelerator.device)
        return (
            bool(accelerator.reduce(flag, reduction="sum").item() > 0)
            if accelerator.num_processes > 1
            else bool(flag)
        )

    def _log(self, accelerator: Accelerator, record: dict) -> None:
        if accelerator.is_main_process and record:
            with (self.output / METRICS_FILE).open("a") as stream:
                stream.write(json.dumps(record) + "\n")

    @torch.no_grad()
    def _dev_transcripts(
        self,
        model: UnispeechLMModel,
        processor: UnispeechLMProcessor,
        utterances: list[Utterance],
        audios: list[str],
    ) -> list[str]:
        """The dev clips' transcripts, each decoded with its language as the hint when the recipe
        trains with hints (decoding without the hint it learned to follow writes little or nothing)."""
        hinted = any(source.language_hint for source in self.recipe.sources)
        texts = [""] * len(audios)
        for language in dict.fromkeys(utterance.lang for utterance in utterances):
            indices = [i for i, utterance in enumerate(utterances) if utterance.lang == language]
            options = TranscriptionOptions(language=language if hinted else None)
            results = transcribe(model, processor, [audios[i] for i in indices], options)
            for i, result in zip(indices, results, strict=True):
                texts[i] = result.text
        return texts

    def _dev(
        self,
        accelerator: Accelerator,
        module: nn.Module,
        processor: UnispeechLMProcessor,
        step: int,
        ctc_only: bool,
    ) -> dict:
        """Dev WER: LLM decoding, or greedy CTC decoding during the CTC warm-up."""
        record = {}
        if accelerator.is_main_process:
            inner = accelerator.unwrap_model(module)
            utterances = read_manifest(self.recipe.dev.manifest)[: self.recipe.dev.limit]
            audios = [str(u.path(self.recipe.dev.manifest)) for u in utterances]
            references = [u.text for u in utterances]
            inner.eval()
            try:
                if ctc_only:
                    batch = processor([AsrSample(audio) for audio in audios]).to(inner.model.device)
                    speech = inner.model.encode_speech(batch["input_features"], batch["feature_lengths"])
                    ctc = inner.model.ctc
                    log_probs = ctc(speech[0], inner.model.backbone.get_input_embeddings())
                    hypotheses = [processor.tokenizer.decode(ids) for ids in ctc.decode(log_probs, speech[1])]
                else:
                    hypotheses = self._dev_transcripts(inner.model, processor, utterances, audios)
                    reliance = audio_reliance(inner.model, processor, audios, references)
                    record["dev_loss"] = {"matched": reliance.matched, "mismatched": reliance.mismatched}
            finally:
                inner.train()
                inner.model.encoder.eval()
            record.update(
                step=step,
                dev_wer=word_error_rate(references, hypotheses, _one_language(utterances)),
                dev_decoder="ctc" if ctc_only else ("joint" if inner.model.ctc is not None else "llm"),
                dev_example={"reference": references[0], "hypothesis": hypotheses[0]},
            )
            logger.info("step %d: dev WER %.2f %% (%s)", step, 100 * record["dev_wer"], record["dev_decoder"])
        accelerator.wait_for_everyone()
        return record

    # ------------------------------------------------------------------------------- checkpoints

    def _save_adapter(
        self, accelerator, module, folder: str, step: int, dev_wer: float | None = None
    ) -> Path | None:
        """The adapter as of `step` in the run's `folder`, with its card; None on other processes."""
        if not accelerator.is_main_process:
            return None
        adapter = save_task_adapter(
            accelerator.unwrap_model(module).model,
            self.recipe.task,
            self.output / folder,
            dtype=SAVE_DTYPES[self.recipe.save_dtype],
        )
        card = {"recipe": self.recipe.to_dict(), "steps": step}
        if dev_wer is not None:
            card["dev_wer"] = dev_wer
        atomic_write_text(adapter / CARD_FILE, json.dumps(card, indent=2) + "\n")
        return adapter

    def _save(self, accelerator, module, optimizer, scheduler, generator, step: int) -> None:
        root = self.output / CHECKPOINT_FOLDER
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:  # what a run killed while writing this step left goes
            staging_folder(root, step, fresh=True)
        accelerator.wait_for_everyone()
        staging = staging_folder(root, step)
        torch.save(_rng_state(generator), staging / f"rng-{accelerator.process_index}.pt")
        if accelerator.is_main_process:
            inner = accelerator.unwrap_model(module)
            trainable = {
                n: p.detach().cpu().contiguous() for n, p in inner.named_parameters() if p.requires_grad
            }
            save_file(trainable, staging / TRAINABLE_FILE)
            torch.save(
                {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
                staging / STATE_FILE,
            )
            state = {"step": step, "world_size": accelerator.num_processes, "recipe": self.recipe.to_dict()}
            (staging / TRAINER_FILE).write_text(json.dumps(state, indent=2) + "\n")
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            publish(staging)
            prune(root, self.recipe.keep_checkpoints)
        accelerator.wait_for_everyone()

    def _restore(self, accelerator, module, optimizer, scheduler, generator) -> int:
        folder = latest_checkpoint(self.output / CHECKPOINT_FOLDER)
        if folder is None:
            logger.warning("--resume: no sound checkpoint in %s, starting from step 0", self.output)
            return 0
        state = json.loads((folder / TRAINER_FILE).read_text())
        self._check_resumable(state["recipe"])
        if state["world_size"] != accelerator.num_processes:
            raise ValueError(
                f"the checkpoint was written by {state['world_size']} processes, this run has "
                f"{accelerator.num_processes}: resume with the same number"
            )
        weights = {
            f"model.{name}" if name.startswith(LEGACY_CTC_PREFIX) else name: value
            for name, value in load_file(folder / TRAINABLE_FILE).items()
        }
        parameters = dict(module.named_parameters())
        expected = {n for n, p in parameters.items() if p.requires_grad}
        shapes = [n for n in expected & set(weights) if weights[n].shape != parameters[n].shape]
        if set(weights) != expected or shapes:
            raise ValueError(
                f"the checkpoint at {folder} holds other trainable weights than this model "
                f"(missing {sorted(expected - set(weights))[:3]}, "
                f"unexpected {sorted(set(weights) - expected)[:3]}, other shapes {shapes[:3]})"
            )
        with torch.no_grad():
            for name, value in weights.items():
                parameters[name].copy_(value)
        saved = torch.load(folder / STATE_FILE, map_location="cpu", weights_only=True)
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        _set_rng_state(
            torch.load(folder / f"rng-{accelerator.process_index}.pt", weights_only=True), generator
        )
        logger.info("resumed from %s (step %d)", folder, state["step"])
        return state["step"]


# ---------------------------------------------------------------------------------------- helpers


class _Window:
    """Sums over the steps since the last log line: losses per task, positions, time."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.real = self.padded = 0
        self.start = time.perf_counter()

    def add(self, task: str, losses: dict[str, torch.Tensor], attention_mask: torch.Tensor) -> None:
        for name, value in losses.items():
            key = "loss" if name == "loss" else f"{name.removesuffix('_loss')}_loss/{task}"
            self.sums[key] = self.sums.get(key, 0.0) + float(value.detach())
            self.counts[key] = self.counts.get(key, 0) + 1
        self.real += int(attention_mask.sum())
        self.padded += attention_mask.numel()

    def flush(self, step: int, lrs: list[float], accelerator: Accelerator) -> dict:
        """The log line of the window, over every process (each calls this at the same step)."""
        seconds = time.perf_counter() - self.start
        mine = _WindowPart(self.sums, self.counts, self.real, self.padded, seconds, _peak_memory_gb())
        parts = gather_object([mine]) if accelerator.num_processes > 1 else [mine]
        self.reset()
        return {"step": step, **_combine(parts), "lr": lrs[0], "module_lr": lrs[-1], "time": time.time()}


@dataclass
class _WindowPart:
    """One process's sums over a log window."""

    sums: dict[str, float]
    counts: dict[str, int]
    real: int
    padded: int
    seconds: float
    peak_memory_gb: float


def _one_language(utterances: list[Utterance]) -> str:
    """The utterances' language when they share one (its text normaliser scores them), else English."""
    languages = {utterance.lang for utterance in utterances}
    return languages.pop() if len(languages) == 1 else DEFAULT_LANGUAGE


def _combine(parts: list[_WindowPart]) -> dict[str, float]:
    """The figures of all processes together: each loss averaged over every process's batches,
    throughput over all positions in the slowest process's time, the largest peak memory."""
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for part in parts:
        for key, value in part.sums.items():
            sums[key] = sums.get(key, 0.0) + value
            counts[key] = counts.get(key, 0) + part.counts[key]
    real, padded = sum(p.real for p in parts), sum(p.padded for p in parts)
    return {
        **{key: sums[key] / counts[key] for key in sorted(sums)},
        "tokens_per_second": real / max(p.seconds for p in parts),
        "padded_fraction": 1 - real / max(padded, 1),
        "peak_memory_gb": max(p.peak_memory_gb for p in parts),
    }


def _peak_memory_gb() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB


def _ctc_targets(ctc: CtcHead | None, processor: UnispeechLMProcessor, examples: list[Example]):
    if ctc is None or any(example.task != ASR for example in examples):
        return None
    return [ctc.targets(processor.tokenize(example.text)) for example in examples]


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def _rng_state(generator: torch.Generator) -> dict:
    state = {"python": random.getstate(), "torch": torch.get_rng_state(), "flow": generator.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict, generator: torch.Generator) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    torch.set_rng_state(state["torch"])
    generator.set_state(state["flow"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop log lines past `step` (written by a run that died before its next checkpoint)."""
    if not path.is_file():
        return
    kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
    atomic_write_text(path, "".join(line + "\n" for line in kept))


def _read_card(folder: Path) -> dict:
    """An adapter's training card; empty where there is none or it cannot be read."""
    try:
        return json.loads((folder / CARD_FILE).read_text())
    except (OSError, ValueError):
        return {}
