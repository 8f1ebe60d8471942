"""The ``cir`` encoder: one multimodal network for images, texts and composed (image + text) items,
trained on a judged split of reference-image + instruction queries (``LearnsFromQueries``)."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any, Sequence

import attrs
import numpy as np
import torch
from embedlab_train.checkpoints import load_tensors, tensors_bytes
from embedlab_train.components import component_spec
from safetensors import SafetensorError

from embedlab.cache import default_cache_dir, texts_hash
from embedlab.components import Component
from embedlab.embeddings import EmbeddingKind
from embedlab.errors import ConfigError, InvalidInputError, NotFittedError, StateError
from embedlab.media import Image, ImageText, InputKind
from embedlab.persistence import load_state, save_state
from embedlab.threads import torch_threads
from embedlab.training import TrainingData
from embedlab_cir.model import JointEncoder
from embedlab_cir.text import TextSide
from embedlab_cir.training import LoopSettings, StageReport, Task, run_stage

QUERY_MODES = ("joint", "sum", "image", "text")
_v = attrs.validators
_positive = [_v.instance_of(int), _v.gt(0)]
_count = [_v.instance_of(int), _v.ge(0)]
ALL_KINDS = frozenset(InputKind)
#: The settings stage-1 weights depend on (besides the loop settings and the data).
STAGE1_FIELDS = ("image_size", "channels", "width", "layers", "heads", "dim", "validation_fraction",
                 "caption_attribute", "seed")


def pixels_tensor(images: Sequence[Image], size: int, channels: int) -> torch.Tensor:
    """``(n, channels, size, size)`` float pixels in [0, 1]."""
    stacked = np.stack([(im if im.shape[:2] == (size, size) else im.resized(size, size)).as_float(channels)
                        for im in images])
    return torch.from_numpy(stacked).permute(0, 3, 1, 2).contiguous()


class CIREncoder(Component):
    """Composed image retrieval encoder (see the package README).

    ``query`` says how an image + text query is embedded: ``joint`` (the method: one pass over
    image and text tokens), ``sum`` (image and text embedded apart, summed: late fusion), ``image``
    or ``text`` (one side only: the paper's single-modality baselines). Documents are embedded as
    what they are (images, texts, or jointly). Training: ``stage1_steps`` of image-caption
    alignment on the training images' ``caption_attribute``, then ``stage2_steps`` of contrastive
    training of the configured query against the targets of the training triplets (their captions,
    as the paper, or their images: ``stage2_target``).
    """

    kind = "encoder"
    name = "cir"
    output_kind = EmbeddingKind.DENSE
    input_kinds = ALL_KINDS

    @attrs.frozen
    class Config:
        query: str = attrs.field(default="joint", validator=_v.in_(QUERY_MODES))
        #: Stage 2's positives: the target's ``caption`` (as the paper's code: a text-only embedding
        #: of the target description) or the target ``image``.
        stage2_target: str = attrs.field(default="caption", validator=_v.in_(("caption", "image")))
        text_encoder: Any = attrs.field(default="minilm", converter=lambda v: component_spec(v, "text_encoder"))
        image_size: int = attrs.field(default=32, validator=_positive)
        channels: int = attrs.field(default=3, validator=_v.in_((1, 3)))
        width: int = attrs.field(default=128, validator=_positive)
        layers: int = attrs.field(default=2, validator=_positive)
        heads: int = attrs.field(default=4, validator=_positive)
        dim: int = attrs.field(default=128, validator=_positive)
        stage1_steps: int = attrs.field(default=600, validator=_count)
        stage2_steps: int = attrs.field(default=600, validator=_count)
        batch_size: int = attrs.field(default=128, validator=[_v.instance_of(int), _v.gt(1)])
        lr: float = attrs.field(default=1e-3, validator=_v.gt(0))
        weight_decay: float = attrs.field(default=0.01, validator=_v.ge(0))
        temperature: float = attrs.field(default=0.05, validator=_v.gt(0))
        warmup_ratio: float = attrs.field(default=0.05, validator=[_v.ge(0), _v.lt(1)])
        eval_every: int = attrs.field(default=100, validator=_positive)
        patience: int = attrs.field(default=3, validator=_positive)
        validation_fraction: float = attrs.field(default=0.1, validator=[_v.ge(0), _v.lt(1)])
        caption_attribute: str = "caption"
        seed: int = attrs.field(default=0, validator=_v.instance_of(int))
        num_threads: int | None = attrs.field(default=1, validator=_v.optional(_positive))
        batch_encode: int = attrs.field(default=256, validator=_positive)
        cache_text: bool = True
        #: Keep the stage-1 weights in ``$EMBEDLAB_CACHE_DIR/cir/`` keyed by everything they depend
        #: on (model and stage-1 settings, seed, text encoder, the captioned images), so models that
        #: differ only in their stage 2 (the baselines) start from the same stage 1.
        stage1_cache: bool = True
        show_progress: bool = False

        def __attrs_post_init__(self) -> None:
            if self.width % self.heads:
                raise ConfigError(f"cir: width {self.width} must be a multiple of heads {self.heads}")

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self.text = TextSide(self.config.text_encoder, cache=self.config.cache_text)
        self.model: JointEncoder | None = None
        self.reports: dict[str, StageReport] = {}

    @property
    def dim(self) -> int:
        return self.config.dim

    def _new_model(self) -> JointEncoder:
        text_dim = self.text.dim  # first: building the text encoder may import plugins that draw random numbers
        torch.manual_seed(self.config.seed)
        c = self.config
        return JointEncoder(text_dim=text_dim, channels=c.channels, image_size=c.image_size, width=c.width,
                            layers=c.layers, heads=c.heads, dim=c.dim)

    def _loop(self, steps: int, seed_offset: int) -> LoopSettings:
        c = self.config
        return LoopSettings(steps, c.batch_size, c.lr, c.weight_decay, c.temperature, c.warmup_ratio, c.eval_every,
                            c.patience, c.seed + seed_offset, c.show_progress)

    # training ------------------------------------------------------------------------------
    def fit_queries(self, data: TrainingData) -> CIREncoder:
        """Stage 1 on the captions of the training split's images (targets and excluded
        references), stage 2 on its (reference image + instruction, target image) triplets."""
        split, corpus = data.split, data.corpus
        queries = split.queries
        if queries.images is None:
            raise InvalidInputError("cir: the training queries have no images; composed image retrieval trains "
                                    "on reference image + instruction queries")
        position = corpus.position
        rows, targets = [], []
        for i, query in enumerate(queries.ids.tolist()):
            relevant = [d for d, g in split.qrels.get(query, {}).items() if g > 0 and d in position]
            if relevant and queries.images[i] is not None:
                rows.append(i)
                targets.append(position[relevant[0]])
        if len(rows) < 2:
            raise InvalidInputError("cir: fewer than 2 training queries with an image and a judged target")
        rows_a, targets_a = np.asarray(rows), np.asarray(targets)
        with torch_threads(self.config.num_threads):
            self.model = self._new_model()
            self.reports = {}
            rng = np.random.default_rng(self.config.seed)
            if self.config.stage1_steps:
                task, data_hash = self._caption_task(data, targets_a, rng)
                self.reports["stage1"] = self._stage1(task, data_hash)
            if self.config.stage2_steps:
                self.reports["stage2"] = run_stage(self.model, self._triplet_task(queries, rows_a, targets_a, corpus,
                                                                                  rng),
                                                   self._loop(self.config.stage2_steps, 1))
        self.model.eval()
        return self

    def _stage1(self, task: Task, data_hash: str) -> StageReport:
        """Run stage 1, or load its weights from the stage-1 cache when an identical run finished."""
        assert self.model is not None
        settings = self._loop(self.config.stage1_steps, 0)
        if not self.config.stage1_cache:
            return run_stage(self.model, task, settings)
        c = self.config
        identity = json.dumps({"data": data_hash, "text": c.text_encoder, "stage1": attrs.asdict(settings),
                               **{k: getattr(c, k) for k in STAGE1_FIELDS}}, sort_keys=True, default=str)
        directory = default_cache_dir() / "cir" / f"stage1-{hashlib.sha256(identity.encode()).hexdigest()[:32]}"
        if directory.exists():
            try:
                state = load_state(directory, kind="cir-stage1")
                load_tensors(state.files["model.safetensors"], self.model.state_dict())
                return StageReport(**state.meta["report"])
            except (StateError, KeyError, TypeError) as error:
                warnings.warn(f"cir: stage-1 cache entry {directory} is unusable ({error}); retraining", stacklevel=2)
        report = run_stage(self.model, task, settings)
        save_state(directory, None, files={"model.safetensors": tensors_bytes(self.model.state_dict())},
                   meta={"report": attrs.asdict(report)}, overwrite=True,
                   identity={"kind": "cir-stage1", "name": directory.name, "config": {}, "distribution": "embedlab-cir",
                             "version": "stage1"})
        return report

    def _held_out(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        order = rng.permutation(n)
        cut = int(round(self.config.validation_fraction * n))
        return np.sort(order[cut:]), np.sort(order[:cut])

    def _captions(self, corpus: Any, what: str) -> np.ndarray:
        column = corpus.attributes.get(self.config.caption_attribute)
        if column is None:
            raise ConfigError(f"cir: {what} needs the corpus attribute {self.config.caption_attribute!r} (image "
                              "captions); set caption_attribute, or stage1_steps = 0 and stage2_target = \"image\"")
        return column

    def _caption_task(self, data: TrainingData, targets: np.ndarray, rng: np.random.Generator) -> tuple[Task, str]:
        corpus, split = data.corpus, data.split
        column = self._captions(corpus, "stage 1")
        references = [corpus.position[d] for q in split.queries.ids.tolist()
                      for d in (split.exclude or {}).get(q, ()) if d in corpus.position]
        images = np.unique(np.concatenate([targets, np.asarray(references, dtype=np.int64)]))
        images = np.asarray([p for p in images.tolist() if corpus.images is not None and corpus.images[p] is not None
                             and isinstance(column[p], str) and column[p]])
        if images.size < 2:
            raise InvalidInputError("cir: fewer than 2 captioned training images for stage 1")
        texts = [str(column[p]) for p in images.tolist()]
        pixels = pixels_tensor([corpus.images[p] for p in images], self.config.image_size, self.config.channels)
        captions = torch.from_numpy(self.text.vectors(texts))
        train, held = self._held_out(images.size, rng)
        digest = hashlib.sha256(pixels.numpy().tobytes())
        digest.update(texts_hash(texts).encode() + held.tobytes())
        model = self.model
        task = Task("stage 1 (image-caption)", lambda r: model(pixels=pixels[r]),
                    lambda r: model(text=captions[r]), train, held, symmetric=True)
        return task, digest.hexdigest()

    def _triplet_task(self, queries: Any, rows: np.ndarray, targets: np.ndarray, corpus: Any,
                      rng: np.random.Generator) -> Task:
        size, channels = self.config.image_size, self.config.channels
        references = pixels_tensor([queries.images[i] for i in rows.tolist()], size, channels)
        instructions = torch.from_numpy(self.text.vectors([queries.texts[i] for i in rows.tolist()]))
        train, held = self._held_out(rows.size, rng)
        model = self.model
        if self.config.stage2_target == "caption":
            column = self._captions(corpus, "stage2_target = \"caption\"")
            captions = torch.from_numpy(self.text.vectors([str(column[p]) for p in targets.tolist()]))
            target = lambda r: model(text=captions[r])  # noqa: E731
        else:
            target_pixels = pixels_tensor([corpus.images[p] for p in targets.tolist()], size, channels)
            target = lambda r: model(pixels=target_pixels[r])  # noqa: E731
        return Task("stage 2 (triplets)", lambda r: self._compose(references[r], instructions[r]), target,
                    train, held, symmetric=False)

    def _compose(self, pixels: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """The configured embedding of image + text queries."""
        assert self.model is not None
        mode = self.config.query
        if mode == "joint":
            return self.model(pixels=pixels, text=text)
        if mode == "image":
            return self.model(pixels=pixels)
        if mode == "text":
            return self.model(text=text)
        return torch.nn.functional.normalize(self.model(pixels=pixels) + self.model(text=text), dim=1)

    # encoding ------------------------------------------------------------------------------
    def _encode(self, items: Sequence[Any], composed: bool) -> np.ndarray:
        if self.model is None:
            raise NotFittedError("cir: call fit_queries (train the encoder) or load a saved one before encoding")
        if len(items) == 0:
            raise InvalidInputError("cir: nothing to encode")
        out = np.zeros((len(items), self.config.dim), dtype=np.float32)
        groups: dict[str, list[int]] = {"image": [], "text": [], "image+text": []}
        for i, item in enumerate(items):
            kind = "text" if isinstance(item, str) else "image" if isinstance(item, Image) else "image+text"
            if kind == "image+text" and not isinstance(item, ImageText):
                raise InvalidInputError(f"cir: item {i} is a {type(item).__name__}")
            groups[kind].append(i)
        size, channels, step = self.config.image_size, self.config.channels, self.config.batch_encode
        with torch_threads(self.config.num_threads), torch.no_grad():
            for kind, rows in groups.items():
                for start in range(0, len(rows), step):
                    chunk = rows[start:start + step]
                    batch = [items[i] for i in chunk]
                    if kind == "image":
                        vectors = self.model(pixels=pixels_tensor(batch, size, channels))
                    elif kind == "text":
                        vectors = self.model(text=torch.from_numpy(self.text.vectors(batch)))
                    else:
                        pixels = pixels_tensor([b.image for b in batch], size, channels)
                        text = torch.from_numpy(self.text.vectors([b.text for b in batch]))
                        vectors = self._compose(pixels, text) if composed else self.model(pixels=pixels, text=text)
                    out[chunk] = vectors.numpy()
        return out

    def encode_queries(self, texts: Sequence[Any]) -> np.ndarray:
        return self._encode(texts, composed=True)

    def encode_documents(self, texts: Sequence[Any]) -> np.ndarray:
        return self._encode(texts, composed=False)

    # persistence ---------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        if self.model is None:
            raise NotFittedError("cir: nothing to save before training")
        reports = {k: attrs.asdict(v) for k, v in self.reports.items()}
        save_state(path, self, files={"model.safetensors": tensors_bytes(self.model.state_dict())},
                   meta={"text_dim": self.text.dim, "reports": reports})

    @classmethod
    def load(cls, path: str | Path) -> CIREncoder:
        """Read an encoder written by :meth:`save`: the saved config through its validators, the
        weights into a freshly built model (every tensor present, same shapes), typed reports."""
        state = load_state(path, kind=cls.kind, name=cls.name)
        encoder = state.build(cls)
        if "model.safetensors" not in state.files:
            raise state.error("model.safetensors is missing from the cir state")
        encoder.model = encoder._new_model()
        try:
            load_tensors(state.files["model.safetensors"], encoder.model.state_dict())
            reports = {str(k): StageReport(**v) for k, v in state.value("reports", dict, default={}).items()}
        except StateError:
            raise
        except (RuntimeError, TypeError, ValueError, SafetensorError) as error:
            raise state.error(f"unusable cir weights or reports ({type(error).__name__}: {str(error)[:200]})") from None
        encoder.model.eval()
        encoder.reports = reports
        return encoder
