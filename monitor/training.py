"""Training the per-language sentiment models (scikit-learn: ``pip install 'brandmon[train]'``).

The models are logistic regressions over the hashed n-grams of ``monitor.scoring.features``;
``SentimentModel`` runs them with numpy alone.  ``train_shipped`` builds the models brandmon
ships from the public labelled sets (one ``<language>.csv`` per language, ``label,text``), each
trained on ``1 - HELD_OUT`` of its rows: ``held_out`` gives the rest, which ``bench/sentiment.py``
measures on.  Cross-validation on the training rows alone (``tuned_shift``) decides how far a
model's negative bias moves, so that brandmon's scorer finds the negative texts best.
``retrain`` adds the team's own labels and keeps a new model only when cross-validation on
those labels says it beats what brandmon scores with today.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from monitor.scoring.complaints import ComplaintAwareScorer, model_language
from monitor.scoring.features import BUCKETS, grams
from monitor.scoring.language import IDENTIFIED, IDENTIFIER, plain_masker
from monitor.scoring.limits import SCORED_CHARS, head
from monitor.scoring.model import ModelInfo, ModelShelf, SentimentModel
from monitor.scoring.sentiment import Post

LABELS = ("negative", "neutral", "positive")
HELD_OUT = 0.2
"""The share of each labelled set kept out of the shipped models, for measuring them."""
SEED = 0
STRENGTH = 10.0
"""Inverse regularisation (scikit-learn's ``C``): 3 and 30 scored no better on the sets."""
FOLDS = 5
MIN_LABELS = 30
"""Fewer labels of a language than this are too few to tell a better model from luck."""
SOURCES = {
    "zh": ("online_shopping_10_cats, ChineseNlpCorpus (SophonPlus)", "not stated"),
    "pl": ("Mozetič, Grčar, Smailović 2016, Multilingual Twitter sentiment", "CC BY-SA 4.0"),
    "sr": ("Mozetič, Grčar, Smailović 2016, Multilingual Twitter sentiment", "CC BY-SA 4.0"),
    "he": ("Amram, Ben-David, Tsarfaty 2018, OnlpLab Hebrew-Sentiment-Data", "MIT"),
    "ms": ("mesolitica malaysian-dataset, supervised-twitter", "Apache-2.0"),
    **{
        language: ("UMSAB / XLM-T (cardiffnlp)", "per original dataset; Twitter terms")
        for language in ("en", "fr", "de", "es", "it", "pt", "ar", "hi")
    },
}
"""Where each shipped language's training set comes from, and its licence as published."""


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    label: str


class Labelled(Protocol):
    """A text the team labelled (``Storage.labelled_mentions`` gives them)."""

    text: str
    language: str | None
    sentiment: str


@dataclass(frozen=True, slots=True)
class Figures:
    """How well predictions matched labels: the negative class and overall."""

    precision: float
    recall: float
    f1: float
    accuracy: float
    count: int

    @classmethod
    def of(cls, predicted: Sequence[str], actual: Sequence[str]) -> Figures:
        hits = sum(p == a == "negative" for p, a in zip(predicted, actual, strict=True))
        precision = hits / max(1, sum(p == "negative" for p in predicted))
        recall = hits / max(1, sum(a == "negative" for a in actual))
        f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
        right = sum(p == a for p, a in zip(predicted, actual, strict=True))
        return cls(precision, recall, f1, right / max(1, len(actual)), len(actual))

    def as_dict(self) -> dict[str, float]:
        return {
            "negative_precision": round(self.precision, 4),
            "negative_recall": round(self.recall, 4),
            "negative_f1": round(self.f1, 4),
            "accuracy": round(self.accuracy, 4),
            "count": self.count,
        }


def read_labelled_csv(path: Path) -> list[Example]:
    """The ``label,text`` rows of ``path``; rows with another label are an error."""
    with path.open(encoding="utf-8", newline="") as lines:
        examples = []
        for number, row in enumerate(csv.DictReader(lines), start=2):
            if row.get("label") not in LABELS or row.get("text") is None:
                raise ValueError(f"{path}:{number}: expected label,text with a label in {LABELS}")
            examples.append(Example(row["text"], row["label"]))
    return examples


def labelled_sets(pairs: Sequence[str]) -> dict[str, list[tuple[str, list[Example]]]]:
    """``LANGUAGE=FILE`` pairs (``brandmon train --add``) as ``train_shipped``'s ``extra``: per
    language, each file's name and rows.  ``ValueError`` names the pair that cannot be read."""
    sets: dict[str, list[tuple[str, list[Example]]]] = {}
    for pair in pairs:
        language, _, name = pair.partition("=")
        if not language or not name:
            raise ValueError(f"{pair!r}: expected LANGUAGE=FILE")
        path = Path(name)
        try:
            examples = read_labelled_csv(path)
        except (OSError, ValueError) as exc:
            raise ValueError(f"{pair}: {exc}") from None
        sets.setdefault(language, []).append((path.name, examples))
    return sets


def split(examples: Sequence[Example], held_out: float = HELD_OUT) -> tuple[list, list]:
    """``(train, test)``: the same shuffle (``SEED``) every time, so the test rows of a shipped
    model are known and never trained on."""
    order = list(range(len(examples)))
    random.Random(SEED).shuffle(order)
    cut = int(len(order) * held_out)
    return [examples[i] for i in order[cut:]], [examples[i] for i in order[:cut]]


def fit(
    examples: Sequence[Example],
    *,
    language: str,
    version: str,
    trained_on: Sequence[dict] = (),
    figures: dict[str, float] | None = None,
    ratios: bool = True,
) -> SentimentModel:
    """A model of ``examples`` (which must hold at least two labels).

    With ``ratios`` (the sentiment models), each class is told from the others by a regression
    of its own over the grams scaled by their log-count ratio for that class (NB-LR, Wang and
    Manning 2012), folded back into plain weights, so a model runs as before: on the shared
    sets, 5-fold cross-validation on the training rows found the negative texts better than
    one multinomial regression did (README, "Models, per language").  Without ``ratios``, one
    multinomial regression: the language identifier's classes."""
    labels = np.array([e.label for e in examples])
    present = set(labels.tolist())
    classes = tuple(label for label in LABELS if label in present) or tuple(sorted(present))
    if len(classes) < 2:
        raise ValueError(f"{language}: training needs two labels at least, got {classes}")
    matrix = _matrix([e.text for e in examples])
    # only the buckets some text has are fitted: the others' weights stay 0 anyway (L2 with no
    # gradient), and the optimiser is several times faster on the smaller problem
    used = np.unique(matrix.indices)
    learn = _one_against_the_rest if ratios else _multinomial
    fitted, bias = learn(matrix[:, used], labels, classes)
    weights = np.zeros((BUCKETS, len(classes)), dtype=np.float32)
    weights[used] = fitted
    info = ModelInfo(
        language=language,
        version=version,
        classes=classes,
        trained_on=tuple(trained_on),
        figures=figures or {},
    )
    return SentimentModel(weights, bias, info)


def _regression(matrix: Any, targets: np.ndarray) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=STRENGTH, max_iter=3000).fit(matrix, targets)


def _multinomial(
    matrix: Any, labels: np.ndarray, classes: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """``(weights, bias)``, one column per class, of one multinomial regression."""
    regression = _regression(matrix, labels)
    if len(classes) == 2:  # scikit-learn keeps one weight vector for two classes
        return _halves(regression.coef_[0], regression.intercept_[0])
    order = [list(regression.classes_).index(label) for label in classes]
    return regression.coef_[order].T, regression.intercept_[order]


def _one_against_the_rest(
    matrix: Any, labels: np.ndarray, classes: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """``(weights, bias)``, one column per class, of a regression per class (of one, the
    second, for two classes) over the grams scaled by their log-count ratios."""
    seen = (matrix > 0).astype(np.float64)
    columns = []
    for label in classes[1:] if len(classes) == 2 else classes:
        mine = labels == label
        ratio = _log_count_ratio(seen, mine)
        regression = _regression(matrix.multiply(ratio).tocsr(), mine)
        columns.append((regression.coef_[0] * ratio, regression.intercept_[0]))
    if len(classes) == 2:
        return _halves(*columns[0])
    return np.stack([w for w, _ in columns], axis=1), np.array([b for _, b in columns])


def _log_count_ratio(seen: Any, mine: np.ndarray) -> np.ndarray:
    """Per gram, the log of how much likelier it is in a text of the class than in another's
    (counted once per text, each count smoothed by one)."""
    inside = 1 + np.asarray(seen[mine].sum(axis=0)).ravel()
    outside = 1 + np.asarray(seen[~mine].sum(axis=0)).ravel()
    return np.log(inside / inside.sum()) - np.log(outside / outside.sum())


def _halves(weights: np.ndarray, bias: float) -> tuple[np.ndarray, np.ndarray]:
    """Two classes' columns from one regression's weights for the second of them."""
    return np.stack([-weights, weights], axis=1) / 2, np.array([-bias, bias]) / 2


def _matrix(texts: Sequence[str]):
    """The texts' features as a sparse matrix, weighed as ``SentimentModel`` weighs them."""
    from scipy.sparse import csr_matrix

    buckets, owners = grams(masked(texts))
    counts = np.bincount(owners, minlength=len(texts))
    values = 1 / np.sqrt(np.maximum(counts, 1))[owners]
    return csr_matrix((values, (owners, buckets)), shape=(len(texts), BUCKETS))


def masked(texts: Sequence[str]) -> list[str]:
    """``texts`` as the scorer hands them to a model: links and handles masked, hashtags split
    (see ``monitor.scoring.masking``)."""
    masker = plain_masker()
    return [masker.mask(head(text, SCORED_CHARS)) for text in texts]


def predict(model: SentimentModel, texts: Sequence[str]) -> list[str]:
    """The most probable label of each text."""
    probabilities = model.probabilities(masked(texts))
    return [model.classes[i] for i in probabilities.argmax(axis=1)]


def cross_validate(
    examples: Sequence[Example],
    language: str,
    *,
    extra: Sequence[Example] = (),
    judge: Callable[[SentimentModel, Sequence[str]], list[str]] = predict,
) -> Figures:
    """Figures of a model trained on the other folds of ``examples`` (plus all of ``extra``)
    for each fold in turn, as ``judge`` labels that fold's texts with it."""
    order = list(range(len(examples)))
    random.Random(SEED).shuffle(order)
    predicted: dict[int, str] = {}
    for fold in range(FOLDS):
        test = order[fold::FOLDS]
        held = set(test)
        train = [*extra, *(examples[i] for i in order if i not in held)]
        model = fit(train, language=language, version="cv")
        for i, label in zip(test, judge(model, [examples[i].text for i in test]), strict=True):
            predicted[i] = label
    return Figures.of([predicted[i] for i in range(len(examples))], [e.label for e in examples])


@dataclass(frozen=True, slots=True)
class Verdict:
    """What training on the team's labels of one language came to."""

    language: str
    labels: int
    current: Figures
    """How brandmon scores those labelled texts today."""
    candidate: Figures | None
    """How it would, cross-validated, with a model trained on them too; None if too few."""

    @property
    def better(self) -> bool:
        """Whether the candidate finds the negative class better (by F1) than today."""
        return self.candidate is not None and self.candidate.f1 > self.current.f1


def retrain(
    labelled: Sequence[Labelled],
    scorer: Callable[[Mapping[str, SentimentModel]], ComplaintAwareScorer],
    *,
    base: Mapping[str, Sequence[Example]] | None = None,
) -> tuple[list[SentimentModel], list[Verdict]]:
    """Models for the languages where the team's ``labelled`` texts make brandmon better.

    ``scorer`` makes brandmon's scorer with today's models, but for the ones it is given.  For
    each language with ``MIN_LABELS`` labels or more, it is compared on those labels with the
    same scorer using a model trained on
    ``base[language]`` (the public set, when given) plus the other folds of the labels.  Only
    where that cross-validated figure is better is a model trained on all of them returned.
    """
    by_language: dict[str, list[Labelled]] = {}
    for item in labelled:
        language = model_language(item.language or "en")
        by_language.setdefault(language, []).append(item)
    today = scorer({})
    models, verdicts = [], []
    for language, items in sorted(by_language.items()):
        examples = [Example(item.text, item.sentiment) for item in items]
        posts = [Post(item.text, item.language) for item in items]
        current = Figures.of(
            [s.label for s in today.score_many(posts)], [e.label for e in examples]
        )
        if len(items) < MIN_LABELS:
            verdicts.append(Verdict(language, len(items), current, None))
            continue
        extra = list((base or {}).get(language, ()))
        hints = {item.text: item.language for item in items}
        judge = partial(_judge, scorer, hints)
        candidate = cross_validate(examples, language, extra=extra, judge=judge)
        verdict = Verdict(language, len(items), current, candidate)
        verdicts.append(verdict)
        if verdict.better:
            version = datetime.now(UTC).strftime("%Y%m%d%H%M")
            trained_on = [{"name": "the team's labels", "rows": len(examples)}]
            if extra:
                trained_on.append({"name": f"public {language} set", "rows": len(extra)})
            model = fit(
                [*extra, *examples], language=language, version=version, trained_on=trained_on
            )
            models.append(model.described(replace(model.info, figures=candidate.as_dict())))
    return models, verdicts


def _judge(
    scorer: Callable[[Mapping[str, SentimentModel]], ComplaintAwareScorer],
    hints: Mapping[str, str | None],
    model: SentimentModel,
    texts: Sequence[str],
) -> list[str]:
    """The labels of ``texts`` by brandmon's scorer with ``model`` for its language."""
    trial = scorer({model.info.language: model})
    return [s.label for s in trial.score_many([Post(text, hints[text]) for text in texts])]


def public_sets(
    directory: Path, extra: Mapping[str, Sequence[tuple[str, list[Example]]]] | None = None
) -> dict[str, list[Example]]:
    """Every example of each ``<language>.csv`` of ``directory`` and of ``extra``, by language:
    what a model trained on the team's labels starts from."""
    sets: dict[str, list[Example]] = {}
    for path in sorted(directory.glob("*.csv")):
        sets.setdefault(path.stem, []).extend(read_labelled_csv(path))
    for language, named in (extra or {}).items():
        for _, examples in named:
            sets.setdefault(language, []).extend(examples)
    return sets


def describe(verdict: Verdict) -> str:
    """One line on what training a language's model on the team's labels came to."""
    now = verdict.current
    line = f"{verdict.language}: {verdict.labels} labels; today negative F1 {now.f1:.2f}"
    if verdict.candidate is None:
        return f"{line}; too few to train on (at least {MIN_LABELS})"
    new = verdict.candidate
    kept = "better: written" if verdict.better else "not better: today's kept"
    return f"{line}, trained on them (cross-validated) {new.f1:.2f}: {kept}"


IDENTIFIER_ROWS = 3000
"""At most this many training rows per language for the language-identification model, so the
largest sets do not outweigh the others."""


def train_identifier(directory: Path) -> SentimentModel:
    """The language-identification model: which of the ``IDENTIFIED`` languages' CSV files in
    ``directory`` a text's language is, trained on each set's training split, with its
    accuracy per language on the held-out splits."""
    train: list[Example] = []
    tests: dict[str, list[Example]] = {}
    trained_on = []
    for path in sorted(directory.glob("*.csv")):
        if path.stem not in IDENTIFIED:
            continue
        kept, held = split(read_labelled_csv(path))
        kept = kept[:IDENTIFIER_ROWS]
        train += [Example(e.text, path.stem) for e in kept]
        tests[path.stem] = held
        trained_on.append(_provenance(path.name, len(kept), path.stem))
    model = fit(train, language=IDENTIFIER, version=_today(), trained_on=trained_on, ratios=False)
    figures = {
        language: round(
            sum(p == language for p in predict(model, [e.text for e in held])) / len(held), 4
        )
        for language, held in tests.items()
    }
    return model.described(replace(model.info, figures=figures))


def train_shipped(
    directory: Path, languages: Sequence[str] | None = None, *, extra: dict | None = None
) -> list[SentimentModel]:
    """A model per ``<language>.csv`` of ``directory``, trained on its training split (and on
    ``extra[language]``, a list of ``(name, examples)`` of further sets, split the same way),
    its negative bias moved by ``tuned_shift`` on that training split, with its figures on the
    held-out split."""
    models = []
    for path in sorted(directory.glob("*.csv")):
        language = path.stem
        if languages and language not in languages:
            continue
        sets = [(path.name, read_labelled_csv(path)), *(extra or {}).get(language, ())]
        train: list[Example] = []
        test: list[Example] = []
        trained_on = []
        for name, examples in sets:
            kept, held = split(examples)
            train += kept
            test += held
            shipped_set = language if name == path.name else None
            trained_on.append(_provenance(name, len(kept), shipped_set))
        shift, tuned, untuned = tuned_shift(train, language)
        model = fit(train, language=language, version=_today(), trained_on=trained_on)
        model = model.shifted(shift) if shift else model
        figures = Figures.of(predict(model, [e.text for e in test]), [e.label for e in test])
        described = figures.as_dict() | {
            "negative_shift": shift,
            "cv_negative_f1": round(tuned, 4),
            "cv_negative_f1_unshifted": round(untuned, 4),
        }
        models.append(model.described(replace(model.info, figures=described)))
    return models


SHIFTS = tuple(round(0.1 * step, 1) for step in range(-10, 16))
"""The moves of the negative class's bias that ``tuned_shift`` tries."""
MIN_GAIN = 0.02
"""The cross-validated negative F1 a move must gain to be kept.  On the shared sets the moves
that gained less (es 0.015, it 0.011, fr 0.006, de 0.003) did not hold on the held-out split
(es -0.001, it -0.010, fr -0.009, de +0.010); Polish's (0.036) and Hebrew's (0.029) did (+0.026,
+0.031): sets where negative is the smaller class."""


class _Trial(ModelShelf):
    """The shelf of one model under trial."""

    def __init__(self, model: SentimentModel) -> None:
        super().__init__([])
        self.model = model

    def get(self, language: str | None) -> SentimentModel | None:
        return self.model if language == self.model.info.language else None


def tuned_shift(examples: Sequence[Example], language: str) -> tuple[float, float, float]:
    """``(shift, F1, F1 unshifted)``: the move of the negative class's bias (one of
    ``SHIFTS``) with which brandmon's scorer finds the negative texts of ``examples`` best
    (negative F1), cross-validated: each fold scored with a model trained on the other folds,
    the language given as the source's hint; 0 unless it gains ``MIN_GAIN`` and beats calling
    every text negative, and ties go to the smallest move.  A model's most probable class is
    not the scorer's label (it blends the keyword lists in, and reads a lean towards negative
    as negative), and a set's share of negative texts is not every brand's: the training split
    alone decides."""
    order = list(range(len(examples)))
    random.Random(SEED).shuffle(order)
    predicted: dict[float, dict[int, str]] = {shift: {} for shift in SHIFTS}
    for fold in range(FOLDS):
        test = order[fold::FOLDS]
        held = set(test)
        train = [examples[i] for i in order if i not in held]
        model = fit(train, language=language, version="cv")
        trial = _Trial(model)
        scorer = ComplaintAwareScorer(models=trial)
        posts = [Post(examples[i].text, language) for i in test]
        for shift in SHIFTS if "negative" in model.classes else (0.0,):
            trial.model = model.shifted(shift) if shift else model
            for i, found in zip(test, scorer.score_many(posts), strict=True):
                predicted[shift][i] = found.label
    actual = [e.label for e in examples]
    figures = {
        shift: Figures.of([labels[i] for i in range(len(examples))], actual)
        for shift, labels in predicted.items()
        if len(labels) == len(examples)
    }
    best = max(figures, key=lambda shift: (round(figures[shift].f1, 3), -abs(shift)))
    # F1 rewards a weak model for calling more texts negative, up to calling all of them so:
    # a move that does not beat that is no better than answering "negative" to everything
    everything = Figures.of(["negative"] * len(actual), actual).f1
    if figures[best].f1 < figures[0.0].f1 + MIN_GAIN or figures[best].f1 <= everything:
        best = 0.0
    return best, figures[best].f1, figures[0.0].f1


def _provenance(name: str, rows: int, language: str | None) -> dict[str, Any]:
    """What a model file says of one set it was trained on; ``language`` names the public set
    whose source and licence ``SOURCES`` knows (None for another set)."""
    source, licence = SOURCES.get(language, ("", "")) if language else ("", "")
    return {"name": name, "rows": rows, "source": source, "licence": licence}


def _today() -> str:
    """A shipped model's version: the day it was trained."""
    return datetime.now(UTC).strftime("%Y%m%d")
