"""The unified speech LM: one backbone that listens (ASR) and speaks (flow-matching TTS).

`UnispeechLMModel` reads top to bottom: the frozen Whisper encoder and the projector turn speech
into embeddings; text tokens, task markers, speech embeddings and noisy mel patches are put in
place of their positions (`embed_inputs`); one pass of the causal-LM backbone runs under the dual
attention mask; then each task's head takes its loss: the LM head over transcript positions
(cross-entropy) and the flow-matching head over the mel positions (masked MSE on velocities). An
ASR adapter may bring a CTC head on the speech embeddings (`ctc`, for decoding). A batch may mix
ASR and TTS samples. The backbone is any transformers causal LM; `save_pretrained`
and `from_pretrained` (safetensors) come from `PreTrainedModel`.

Shapes: `B` batch, `L` positions, `D` backbone width, `A` samples with speech, `S` TTS samples,
`N` speech embeddings per sample, `G` mel frames, `P` mel patches, `M` mel bins.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoModel, AutoModelForCausalLM, Cache, PreTrainedModel
from transformers.utils import ModelOutput

from unispeech.model.adapters import has_task_adapters
from unispeech.model.configuration import UnispeechLMConfig
from unispeech.model.ctc import CtcHead
from unispeech.model.encoder import SpeechEncoder
from unispeech.model.flow import FlowMatching, FlowMatchingExample, ZeroLinear
from unispeech.model.lengths import mel_patches
from unispeech.model.markers import Marker, MarkerEmbedding
from unispeech.model.masks import dual_attention_mask, position_ids
from unispeech.model.projector import SpeechProjector
from unispeech.model.sequences import IGNORE_INDEX


@dataclass
class UnispeechLMOutput(ModelOutput):
    """Losses of one forward: `text_loss` over transcript and correction tokens (ASR, GER), `tts_loss`
        over generated mel frames, `prior_loss` of the phoneme prior over them, `duration_loss` over TTS
    phoneme units; `loss` sums those present."""

    loss: torch.Tensor | None = None
    text_loss: torch.Tensor | None = None
    tts_loss: torch.Tensor | None = None
    prior_loss: torch.Tensor | None = None  # the phoneme prior's mel against the target (TTS)
    duration_loss: torch.Tensor | None = None  # log frames per phoneme unit (TTS)
    last_hidden_state: torch.Tensor | None = None  # (B, L, D)
    speech_embeddings: torch.Tensor | None = None  # (A, N, D), the projector's output
    speech_lengths: torch.Tensor | None = None  # (A,)


class UnispeechLMPreTrainedModel(PreTrainedModel):
    config_class = UnispeechLMConfig
    base_model_prefix = "unispeech"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, ZeroLinear):
            module.reset_parameters()
        else:
            super()._init_weights(module)


class UnispeechLMModel(UnispeechLMPreTrainedModel):
    def __init__(self, config: UnispeechLMConfig):
        super().__init__(config)
        hidden_size = config.text_config.hidden_size
        self.backbone = AutoModelForCausalLM.from_config(config.text_config)
        self.encoder = SpeechEncoder(
            config.encoder_config, full_context=config.encoder_full_context, frozen=config.freeze_encoder
        )
        self.projector = SpeechProjector(
            config.encoder_config.n_audio_state,
            config.projector_hidden_size,
            hidden_size,
            config.projector_stack,
        )
        self.markers = MarkerEmbedding(hidden_size)
        self.flow = FlowMatching(config)
        # The CTC head of an ASR adapter trained with the CTC aid (ctc.py); none in the base model.
        self.ctc: CtcHead | None = None
        self.post_init()

    @classmethod
    def from_pretrained(cls, *args, **kwargs) -> UnispeechLMModel | tuple[UnispeechLMModel, dict]:
        loaded = super().from_pretrained(*args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded  # output_loading_info=True: (model, info)
        model.encoder.requires_grad_(not model.config.freeze_encoder)  # loading makes fresh parameters
        return loaded

    def save_pretrained(self, save_directory, *args, **kwargs) -> None:
        """The base model only: with task adapters attached, the backbone's layers are wrapped and the
        active task's modules are live, so save adapters with `adapters.save_task_adapter` instead."""
        if has_task_adapters(self):
            raise ValueError(
                "this model carries task adapters: save them with "
                "unispeech.model.adapters.save_task_adapter, and the base model from a copy loaded "
                "without adapters"
            )
        super().save_pretrained(save_directory, *args, **kwargs)

    def encode_speech(
        self, input_features: torch.Tensor, feature_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Whisper log-mel `(A, M, F)` → speech embeddings `(A, N, D)` and their `(A,)` lengths."""
        return self.project_speech(*self.encoder(input_features, feature_lengths))

    def project_speech(
        self, encoder_states: torch.Tensor, encoder_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder output `(A, T, E)` → speech embeddings `(A, N, D)` at the scale of the backbone's
        token embeddings, and their `(A,)` lengths."""
        token_rms = self.backbone.get_input_embeddings().weight.detach().pow(2).mean().sqrt()
        return self.projector(encoder_states, encoder_lengths, token_rms)

    def embed_inputs(
        self,
        input_ids: torch.Tensor,
        marker_ids: torch.Tensor,
        speech_mask: torch.Tensor | None = None,
        speech: tuple[torch.Tensor, torch.Tensor] | None = None,
        mel_mask: torch.Tensor | None = None,
        mel_embeddings: torch.Tensor | None = None,
        time_embeddings: torch.Tensor | None = None,
        prompt_mask: torch.Tensor | None = None,
        prompt_embeddings: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Backbone inputs `(B, L, D)`: each position's token, marker, speech or mel embedding.

        `speech` is `encode_speech`'s output; `mel_embeddings` `(S, P, D)` (the generated span),
        `time_embeddings` `(S, D)` and `prompt_embeddings` `(S, Pp, D)` belong to the TTS samples
        in batch order (the time embedding adds to `<time>`). Either mel part may come alone (a
        cached prefix holds the prompt, a span step the generated mel)."""
        embeddings = self.backbone.get_input_embeddings()(input_ids)  # (B, L, D)
        markers = marker_ids >= 0
        embeddings = _place(embeddings, markers, self.markers(marker_ids[markers]))
        if speech is not None:
            speech_embeddings, lengths = speech
            embeddings = _place(embeddings, speech_mask, _unpad(speech_embeddings, lengths), "speech")
        if prompt_embeddings is not None:
            patches = prompt_mask.sum(dim=1)[marker_ids.eq(Marker.TTS_START).any(dim=1)]  # (S,) TTS rows
            embeddings = _place(embeddings, prompt_mask, _unpad(prompt_embeddings, patches), "prompt")
        if mel_embeddings is not None:
            patches = mel_mask.sum(dim=1)
            embeddings = _place(embeddings, mel_mask, _unpad(mel_embeddings, patches[patches > 0]), "mel")
            time_positions = marker_ids == Marker.TIME
            embeddings = embeddings + _place(
                torch.zeros_like(embeddings), time_positions, time_embeddings, "time"
            )
        return embeddings

    def run_backbone(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
        bidirectional_mask: torch.Tensor | None = None,
        hidden_from_span: torch.Tensor | None = None,
        past_key_values: Cache | None = None,
    ) -> torch.Tensor:
        """The backbone's final hidden states `(B, Q, D)` under the dual attention mask.

        Without a cache, the Q inputs are the whole sequence. With `past_key_values`, they are the
        newest Q positions, appended to the cache; the masks `(B, K)` then cover all K positions,
        cached and new."""
        queries = inputs_embeds.shape[1]
        mask = dual_attention_mask(
            attention_mask,
            bidirectional_mask,
            hidden_from_span,
            query_length=queries,
            dtype=inputs_embeds.dtype,
        )
        outputs = self.backbone.get_decoder()(
            inputs_embeds=inputs_embeds,
            attention_mask=mask,
            position_ids=position_ids(attention_mask)[:, -queries:],
            past_key_values=past_key_values,
            use_cache=past_key_values is not None,
        )
        return outputs.last_hidden_state

    def _labelled_logits(
        self, hidden: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The float logits `(n, V)` before each of the `n` labelled tokens (the LM head runs
        there only), those tokens `(n,)` and the rows they are in `(n,)`."""
        targets = labels[:, 1:]
        learned = targets != IGNORE_INDEX
        logits = self.backbone.get_output_embeddings()(hidden[:, :-1][learned])
        return logits.float(), targets[learned], learned.nonzero()[:, 0]

    def next_token_loss(self, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Next-token cross-entropy where labels are set."""
        logits, targets, _ = self._labelled_logits(hidden, labels)
        return nn.functional.cross_entropy(logits, targets)

    def labelled_log_probability(self, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Per row, the summed log-probability of its labelled next tokens: how likely the model
        finds each row's continuation (a correction and its eos, say). (B, L, D), (B, L) → (B,)."""
        logits, targets, rows = self._labelled_logits(hidden, labels)
        token = logits.log_softmax(-1).gather(-1, targets[:, None])[:, 0]  # (n,)
        return torch.zeros(len(labels), device=token.device).index_add_(0, rows, token)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        marker_ids: torch.Tensor,
        labels: torch.Tensor | None = None,
        speech_mask: torch.Tensor | None = None,
        mel_mask: torch.Tensor | None = None,
        prompt_mask: torch.Tensor | None = None,
        bidirectional_mask: torch.Tensor | None = None,
        text_condition_mask: torch.Tensor | None = None,
        prompt_condition_mask: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        feature_lengths: torch.Tensor | None = None,
        encoder_states: torch.Tensor | None = None,
        encoder_lengths: torch.Tensor | None = None,
        mel: torch.Tensor | None = None,
        mel_lengths: torch.Tensor | None = None,
        frame_units: torch.Tensor | None = None,
        prompt_mel: torch.Tensor | None = None,
        prompt_frames: torch.Tensor | None = None,
        units: torch.Tensor | None = None,
        unit_durations: torch.Tensor | None = None,
        unit_lengths: torch.Tensor | None = None,
        flow_example: FlowMatchingExample | None = None,
        generator: torch.Generator | None = None,
    ) -> UnispeechLMOutput:
        """Losses of a processor batch. TTS samples get a random flow-matching draw (time, noise,
        condition dropout) from `generator`, unless `flow_example` gives one, and their duration
        predictor learns the units' frames. Speech comes as log-mel (`input_features`) or as cached
        encoder output (`encoder_states`)."""
        speech = None
        if input_features is not None:
            speech = self.encode_speech(input_features, feature_lengths)
        elif encoder_states is not None:
            speech = self.project_speech(encoder_states, encoder_lengths)
        mel_embeddings = time_embeddings = prompt_embeddings = hidden_from_span = None
        if mel is not None:
            target = self.flow.normalize(mel)
            if flow_example is None:
                flow_example = self.flow.draw(target, mel_lengths, generator)
            condition = self.flow.phoneme_condition(frame_units, mel_lengths)
            mel_embeddings = self.flow.embed_target(flow_example.noisy, condition, ~flow_example.drop_text)
            prompt_embeddings = self.flow.embed_prompt(self.flow.normalize(prompt_mel))
            time_embeddings = self.flow.time_embedding(flow_example.time)
            tts_rows = mel_mask.any(dim=1)
            drop_text = torch.zeros_like(tts_rows).masked_scatter(tts_rows, flow_example.drop_text)
            drop_audio = torch.zeros_like(tts_rows).masked_scatter(tts_rows, flow_example.drop_audio)
            hidden_from_span = (text_condition_mask & drop_text[:, None]) | (
                prompt_condition_mask & drop_audio[:, None]
            )
        inputs_embeds = self.embed_inputs(
            input_ids,
            marker_ids,
            speech_mask,
            speech,
            mel_mask,
            mel_embeddings,
            time_embeddings,
            prompt_mask,
            prompt_embeddings,
        )
        hidden = self.run_backbone(inputs_embeds, attention_mask, bidirectional_mask, hidden_from_span)

        text_loss = tts_loss = prior_loss = duration_loss = None
        if labels is not None and (labels != IGNORE_INDEX).any():
            text_loss = self.next_token_loss(hidden, labels)
        if mel is not None:
            span_hidden = _repad(
                hidden[mel_mask], mel_patches(mel_lengths, self.flow.patch_size)
            )  # (S, P, D)
            velocity = self.flow.velocity(span_hidden, time_embeddings, frames=mel.shape[1])
            tts_loss = self.flow.loss(velocity, flow_example.velocity, flow_example.frames)
            prior_loss = self.flow.loss(condition.prior, target, flow_example.frames)
        if unit_durations is not None:
            log_durations = self.flow.log_durations(units, unit_lengths)
            duration_loss = self.flow.duration_loss(log_durations, unit_durations, unit_lengths)
        losses = [loss for loss in (text_loss, tts_loss, prior_loss, duration_loss) if loss is not None]
        return UnispeechLMOutput(
            loss=sum(losses) if losses else None,
            text_loss=text_loss,
            tts_loss=tts_loss,
            prior_loss=prior_loss,
            duration_loss=duration_loss,
            last_hidden_state=hidden,
            speech_embeddings=None if speech is None else speech[0],
            speech_lengths=None if speech is None else speech[1],
        )


def _lengths_mask(lengths: torch.Tensor, longest: int) -> torch.Tensor:
    return torch.arange(longest, device=lengths.device)[None] < lengths[:, None]


def _unpad(padded: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """`(N, T, D)` with `(N,)` real lengths → `(Σ lengths, D)`, in order."""
    return padded[_lengths_mask(lengths, padded.shape[1])]


def _repad(flat: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """`(Σ lengths, D)` → `(N, max length, D)`, zero-padded: the inverse of `_unpad`."""
    real = _lengths_mask(lengths, int(lengths.max()))
    return flat.new_zeros(*real.shape, flat.shape[-1]).masked_scatter(real[..., None], flat)


def _place(
    embeddings: torch.Tensor, positions: torch.Tensor, values: torch.Tensor, what: str = "marker"
) -> torch.Tensor:
    """Put `values` `(n, D)` at the `n` True `positions` `(B, L)` of `embeddings`, in row-major order."""
    expected = int(positions.sum())
    if values.shape[0] != expected:
        raise ValueError(
            f"the batch lays out {expected} {what} positions but {values.shape[0]} {what} embeddings "
            "were made: were the inputs made by a processor with this model's config?"
        )
    return embeddings.masked_scatter(positions[..., None], values.to(embeddings.dtype))


AutoModel.register(UnispeechLMConfig, UnispeechLMModel)
