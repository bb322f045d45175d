"""Small per-language sentiment models: a linear layer over hashed n-grams, run with numpy.

A model file is a numpy ``.npz`` archive (no pickles) holding the weights quantised to int8 with
one scale per class, the biases, the class names and a JSON description: language, version, the
data it was trained on and its licences, and its cross-validated figures.  A directory of models
has a ``manifest.json`` naming each language's file and the file's SHA-256; a file whose hash does
not match is refused, so a truncated copy or a hand-edited file is never scored with.

``ModelShelf`` loads a language's model the first time a text in that language is scored, and
remembers a broken or missing one as missing (logged once), so the scorer falls back to the
keyword lists instead of failing.  Training lives in ``monitor.training`` (scikit-learn, an
optional extra); nothing here needs more than numpy.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from monitor.scoring.features import BUCKETS, FEATURES_VERSION, Grams

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
SHIPPED_MODELS = "models"
"""The directory of ``monitor/data`` that holds the models brandmon ships."""


class ModelError(Exception):
    """A model file that cannot be used: missing, corrupt, or made for other features."""


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What a model is and where it came from; stored in the model file."""

    language: str
    version: str
    classes: tuple[str, ...]
    trained_on: tuple[Mapping[str, Any], ...] = ()
    """One entry per data set: ``name``, ``rows``, ``source``, ``licence``."""
    figures: Mapping[str, float] = field(default_factory=dict)
    """Cross-validated figures measured when it was trained, e.g. ``negative_f1``."""
    features_version: int = FEATURES_VERSION

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT_VERSION,
                "language": self.language,
                "version": self.version,
                "classes": list(self.classes),
                "trained_on": list(self.trained_on),
                "figures": dict(self.figures),
                "features_version": self.features_version,
            },
            ensure_ascii=False,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> ModelInfo:
        raw = json.loads(text)
        if raw.get("format") != FORMAT_VERSION:
            raise ModelError(f"model format {raw.get('format')!r}, expected {FORMAT_VERSION}")
        return cls(
            language=raw["language"],
            version=raw["version"],
            classes=tuple(raw["classes"]),
            trained_on=tuple(raw.get("trained_on", ())),
            figures=raw.get("figures", {}),
            features_version=raw["features_version"],
        )


class SentimentModel:
    """Class probabilities for a text: softmax of the weights of its n-gram buckets."""

    def __init__(
        self,
        weights: np.ndarray,
        bias: np.ndarray,
        info: ModelInfo,
        scale: np.ndarray | None = None,
    ) -> None:
        """``weights`` is ``(BUCKETS, classes)``: floats, quantised here to int8 with one scale
        per class, or int8 already with its ``scale``."""
        if weights.shape != (BUCKETS, len(info.classes)) or bias.shape != (len(info.classes),):
            raise ModelError(
                f"{info.language} model has weights {weights.shape} and bias {bias.shape}, "
                f"expected ({BUCKETS}, {len(info.classes)}) and ({len(info.classes)},)"
            )
        if info.features_version != FEATURES_VERSION:
            raise ModelError(
                f"{info.language} model was trained on features version "
                f"{info.features_version}, this brandmon computes version {FEATURES_VERSION}"
            )
        if scale is not None:
            quantised = weights.astype(np.int8)
            self._scale = scale.astype(np.float32)
        else:
            peak = np.abs(weights).max(axis=0)
            self._scale = (np.where(peak > 0, peak, 1.0) / 127).astype(np.float32)
            quantised = np.round(weights / self._scale).astype(np.int8)
        self._by_class = np.ascontiguousarray(quantised.T)
        """The int8 weights, one row per class."""
        self._bias = bias.astype(np.float32)
        self.info = info

    @property
    def classes(self) -> tuple[str, ...]:
        return self.info.classes

    def probabilities(self, texts: Sequence[str] | Grams) -> np.ndarray:
        """``(len(texts), len(classes))``: the probability of each class for each text (given
        as its grams when another model hashed them already).

        A gram counts once per occurrence, and a text's grams are weighed by one over the square
        root of how many it has, as in training (``monitor.training``)."""
        if not len(texts):
            return np.empty((0, len(self.classes)))
        hashed = texts if isinstance(texts, Grams) else Grams.of(texts)
        starts = np.cumsum(hashed.counts) - hashed.counts
        # one class at a time: a gather and a sum over a contiguous row are several times
        # faster than over the rows of a (grams, classes) block
        summed = np.stack(
            [
                np.add.reduceat(row[hashed.buckets], starts, dtype=np.int32)
                for row in self._by_class
            ],
            axis=1,
        )
        logits = summed * self._scale
        logits /= np.sqrt(np.maximum(hashed.counts, 1))[:, None]
        logits += self._bias
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=logits)
        logits /= logits.sum(axis=1, keepdims=True)
        return logits

    def described(self, info: ModelInfo) -> SentimentModel:
        """This model with ``info`` in place of its own description (e.g. with the figures
        measured after training)."""
        return SentimentModel(self._by_class.T, self._bias, info, self._scale)

    def shifted(self, amount: float) -> SentimentModel:
        """This model with ``amount`` added to its negative class's bias: the same texts, read
        as more (or, below 0, less) likely negative."""
        bias = self._bias.copy()
        bias[self.classes.index("negative")] += amount
        return SentimentModel(self._by_class.T, bias, self.info, self._scale)

    def to_bytes(self) -> bytes:
        """The model as an ``.npz`` archive."""
        out = io.BytesIO()
        np.savez_compressed(
            out,
            weights=np.ascontiguousarray(self._by_class.T),
            scale=self._scale,
            bias=self._bias,
            info=np.array(self.info.to_json()),
        )
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, *, name: str = "model") -> SentimentModel:
        """Read a model written by ``to_bytes``; ``ModelError`` says what is wrong with it."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                info = ModelInfo.from_json(str(archive["info"]))
                weights, scale, bias = archive["weights"], archive["scale"], archive["bias"]
        except ModelError:
            raise
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
            raise ModelError(f"{name} is not a brandmon model file: {exc}") from exc
        if scale.shape != bias.shape:
            raise ModelError(f"{name} has {scale.shape} scales for {bias.shape} classes")
        return cls(weights, bias, info, scale)


_WORD = re.compile(r"[^\W\d_]{2,}")
# two letters of a script written without spaces (Chinese, Japanese, Korean, Thai) are a word
_SPACELESS = re.compile(r"[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]{2}")


def enough_words(text: str) -> bool:
    """Whether ``text`` has the two words (runs of two letters or more; in a script without
    spaces, two letters) a model needs to read it: the grams of one word or none (a name,
    punctuation, emoji) say too little to trust."""
    if _SPACELESS.search(text):
        return True
    runs = _WORD.finditer(text)
    return next(runs, None) is not None and next(runs, None) is not None


def shipped() -> Any:
    """The directory of the models brandmon ships (a package resource)."""
    return resources.files("monitor.data") / SHIPPED_MODELS


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_models(directory: Path, models: Sequence[SentimentModel]) -> Path:
    """Write ``models`` into ``directory`` (one file per language) with a manifest of their
    hashes; a language already in the directory's manifest and not among ``models`` is kept."""
    directory.mkdir(parents=True, exist_ok=True)
    manifest = _manifest(directory) if (directory / MANIFEST).exists() else {}
    for model in models:
        data = model.to_bytes()
        name = f"{model.info.language}.npz"
        (directory / name).write_bytes(data)
        manifest[model.info.language] = {
            "file": name,
            "sha256": sha256(data),
            "version": model.info.version,
        }
    path = directory / MANIFEST
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def _manifest(directory: Path | Any) -> dict[str, dict[str, str]]:
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {directory}/{MANIFEST}: {exc}") from exc
    if not isinstance(manifest, dict):
        raise ModelError(f"{directory}/{MANIFEST} is not a JSON object")
    return manifest


def load_model(directory: Path | Any, language: str) -> SentimentModel | None:
    """``language``'s model from ``directory``, or None if the directory has none for it.

    ``directory`` is a path or an ``importlib.resources`` traversable.  Raises ``ModelError``
    when the manifest names a file that is missing, altered or not a model.
    """
    entry = _manifest(directory).get(language)
    if entry is None:
        return None
    path = directory / entry["file"]
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{language} model {path} cannot be read: {exc}") from exc
    if sha256(data) != entry["sha256"]:
        raise ModelError(
            f"{language} model {path} does not match the SHA-256 in its manifest "
            "(altered or truncated); not using it"
        )
    model = SentimentModel.from_bytes(data, name=str(path))
    if model.info.language != language:
        raise ModelError(f"{path} holds a {model.info.language} model, not {language}")
    return model


class ModelShelf:
    """Each language's model, loaded the first time it is asked for.

    Directories are searched in order (the team's own trained models first, then the shipped
    ones); a model that fails to load is logged once and skipped, so a language whose every
    model is broken is scored by its keyword lists.  ``loaded`` models come before any
    directory's.
    """

    def __init__(
        self,
        directories: Sequence[Path | Any] | None = None,
        *,
        loaded: Mapping[str, SentimentModel] | None = None,
    ) -> None:
        self._directories = list(directories) if directories is not None else [shipped()]
        self._loaded: dict[str, SentimentModel | None] = dict(loaded or {})

    @classmethod
    def for_team(
        cls, directory: Path | None, *, loaded: Mapping[str, SentimentModel] | None = None
    ) -> ModelShelf:
        """The team's models in ``directory`` (when set), then the shipped ones; ``loaded``
        come first."""
        return cls([directory, shipped()] if directory else [shipped()], loaded=loaded)

    def get(self, language: str | None) -> SentimentModel | None:
        if language is None:
            return None
        try:
            return self._loaded[language]
        except KeyError:
            model = self._loaded[language] = self._load(language)
            return model

    def _load(self, language: str) -> SentimentModel | None:
        for directory in self._directories:
            if not (directory / MANIFEST).is_file():
                continue
            try:
                model = load_model(directory, language)
            except ModelError as exc:
                log.error("sentiment model: %s", exc)
                continue
            if model is not None:
                return model
        return None
