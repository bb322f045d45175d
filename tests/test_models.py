"""Per-language sentiment models: trained, saved, checked, loaded lazily, blended, and retrained
from the command line.  The texts are invented here; nothing is read from ``../shared``."""

from __future__ import annotations

import csv
import json
import logging
import random
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from monitor.cli import app
from monitor.scoring.complaints import ComplaintAwareScorer
from monitor.scoring.features import Grams, grams
from monitor.scoring.model import (
    MANIFEST,
    ModelError,
    ModelShelf,
    SentimentModel,
    load_model,
    shipped,
    write_models,
)
from monitor.scoring.sentiment import Post
from monitor.storage import Storage
from monitor.training import MIN_GAIN, Example, fit, predict, tuned_shift
from monitor.triage import triage

# An invented language: what a text says is in its words, never in their order or number.
BAD = ["grulk", "vantor", "mizzel", "drabo", "skeff", "quorn"]
GOOD = ["lumina", "sarvi", "pellam", "tovish", "brenna", "olaqua"]
FILLER = ["ta", "ne", "koro", "mi", "sulo", "epa", "ruva", "dinn"]


def invented(words: list[str], rng: random.Random) -> str:
    picked = rng.sample(words, 2) + rng.sample(FILLER, 4)
    rng.shuffle(picked)
    return " ".join(picked)


@pytest.fixture(scope="module")
def examples() -> list[Example]:
    rng = random.Random(7)
    return [
        *(Example(invented(BAD, rng), "negative") for _ in range(150)),
        *(Example(invented(GOOD, rng), "positive") for _ in range(150)),
    ]


@pytest.fixture(scope="module")
def model(examples: list[Example]) -> SentimentModel:
    return fit(examples, language="xx", version="test")


def test_a_model_predicts_what_it_learnt_on_texts_it_never_saw(model: SentimentModel) -> None:
    rng = random.Random(99)
    bad = [invented(BAD, rng) for _ in range(40)]
    good = [invented(GOOD, rng) for _ in range(40)]
    assert predict(model, bad) == ["negative"] * 40
    assert predict(model, good) == ["positive"] * 40


@pytest.mark.parametrize("ratios", [True, False])
def test_a_three_class_model_tells_each_class_from_the_others(ratios: bool) -> None:
    rng = random.Random(5)
    plain = ["orvi", "baltum", "kesso", "fenwy", "trell", "ulmo"]

    def texts(words: list[str], count: int) -> list[str]:
        return [invented(words, rng) for _ in range(count)]

    labelled = {"negative": BAD, "neutral": plain, "positive": GOOD}
    rows = [Example(t, label) for label, words in labelled.items() for t in texts(words, 120)]
    model = fit(rows, language="xx", version="test", ratios=ratios)
    assert model.classes == ("negative", "neutral", "positive")
    for label, words in labelled.items():
        assert predict(model, texts(words, 30)) == [label] * 30


def test_a_batch_scores_as_each_text_alone(model: SentimentModel) -> None:
    texts = ["grulk ta ne", "", "lumina sarvi 🙂", "x" * 500, "grulk"]
    together = model.probabilities(texts)
    alone = np.vstack([model.probabilities([text]) for text in texts])
    assert np.allclose(together, alone)
    assert np.allclose(together.sum(axis=1), 1.0)
    assert model.probabilities([]).shape == (0, 2)
    # some texts of a batch hashed once (as the language model and a sentiment model share them)
    assert np.allclose(model.probabilities(Grams.of(texts).select([3, 0])), alone[[3, 0]])


def test_a_shifted_model_reads_texts_as_more_negative(model: SentimentModel) -> None:
    texts = ["grulk ta ne", "lumina sarvi", "koro mi"]
    before = model.probabilities(texts)[:, model.classes.index("negative")]
    after = model.shifted(1.0).probabilities(texts)[:, model.classes.index("negative")]
    assert (after > before).all()
    assert np.allclose(model.shifted(0.0).probabilities(texts), model.probabilities(texts))
    # the move is part of the saved model
    again = SentimentModel.from_bytes(model.shifted(1.0).to_bytes())
    assert np.allclose(again.probabilities(texts), model.shifted(1.0).probabilities(texts))


def test_a_set_read_right_already_keeps_its_bias(examples: list[Example]) -> None:
    shift, tuned, untuned = tuned_shift(examples, "xx")
    assert (shift, tuned, untuned) == (0.0, 1.0, 1.0)


def test_a_bias_is_moved_only_for_a_clear_gain() -> None:
    # negative is the smaller class, and half its texts say it with one word among many
    rng = random.Random(3)
    rows = [
        *(Example(invented(BAD, rng), "negative") for _ in range(40)),
        *(
            Example(" ".join(rng.sample(FILLER, 5) + rng.sample(BAD, 1)), "negative")
            for _ in range(40)
        ),
        *(Example(invented(GOOD, rng), "positive") for _ in range(160)),
        *(Example(" ".join(rng.sample(FILLER, 6)), "positive") for _ in range(80)),
    ]
    shift, tuned, untuned = tuned_shift(rows, "xx")
    assert shift == 0.0 or tuned >= untuned + MIN_GAIN


def test_grams_read_case_digits_and_repeats_alike() -> None:
    assert np.array_equal(grams(["Sooooo SLOW 123"])[0], grams(["soo slow 000"])[0])
    assert not np.array_equal(grams(["slow"])[0], grams(["slew"])[0])
    # runs are cut in each text, never across two: a batch has the grams of each text alone
    texts = ["heyyy", "yyy!!!", "!!", "\0\0\0 zzz", ""]
    alone = np.concatenate([grams([text])[0] for text in texts])
    assert np.array_equal(grams(texts)[0], alone)
    assert np.array_equal(grams(["yyy!!!"])[0], grams(["yy!!"])[0])


def test_a_saved_model_loads_back_with_its_description(
    model: SentimentModel, tmp_path: Path
) -> None:
    write_models(tmp_path, [model])
    loaded = load_model(tmp_path, "xx")
    assert loaded is not None
    assert loaded.info == model.info
    assert np.allclose(loaded.probabilities(["grulk ta"]), model.probabilities(["grulk ta"]))
    assert load_model(tmp_path, "yy") is None


def test_an_altered_model_file_is_refused_by_its_hash(
    model: SentimentModel, tmp_path: Path
) -> None:
    write_models(tmp_path, [model])
    data = bytearray((tmp_path / "xx.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "xx.npz").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="SHA-256"):
        load_model(tmp_path, "xx")


def test_a_file_that_is_no_model_is_refused_with_its_name(tmp_path: Path) -> None:
    (tmp_path / "xx.npz").write_bytes(b"not a zip archive")
    with pytest.raises(ModelError, match="xx.npz is not a brandmon model file"):
        SentimentModel.from_bytes(b"not a zip archive", name=str(tmp_path / "xx.npz"))


def broken_polish(tmp_path: Path) -> Path:
    """A models directory whose Polish model is truncated."""
    (tmp_path / "pl.npz").write_bytes(b"PK\x03\x04truncated")
    manifest = {"pl": {"file": "pl.npz", "sha256": "0" * 64, "version": "x"}}
    (tmp_path / MANIFEST).write_text(json.dumps(manifest))
    return tmp_path


def test_a_broken_model_falls_back_to_the_keyword_lists_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    scorer = ComplaintAwareScorer(models=ModelShelf([broken_polish(tmp_path)]))
    with caplog.at_level(logging.ERROR, logger="monitor.scoring.model"):
        scorer.score("my order never arrived, third week of waiting", language="en")
        assert not caplog.records  # English needs no Polish model: nothing loaded yet
        first = scorer.score("Fatalna obsługa, paczka zaginęła", language="pl")
        scorer.score("Fatalna obsługa", language="pl")
    assert [r.getMessage() for r in caplog.records] == [
        f"sentiment model: pl model {tmp_path / 'pl.npz'} does not match the SHA-256 in its "
        "manifest (altered or truncated); not using it"
    ]
    assert (first.label, first.confidence) == ("negative", "low")  # the keyword list's reading


def test_the_teams_model_comes_before_the_shipped_one(tmp_path: Path) -> None:
    rng = random.Random(3)
    # a team whose customers say "zupa" when unhappy, in otherwise plain Polish
    team = [Example(f"zupa {invented(FILLER, rng)}", "negative") for _ in range(60)]
    team += [Example(f"{invented(FILLER, rng)} dobrze", "positive") for _ in range(60)]
    write_models(tmp_path, [fit(team, language="pl", version="team")])
    ours = ComplaintAwareScorer(models=ModelShelf.for_team(tmp_path))
    assert ours.score("zupa ta ne koro", language="pl").label == "negative"
    # and the other languages keep the shipped models
    assert ours.score("Fantastico servizio, grazie mille!", language="it").label == "positive"


def test_the_shipped_models_are_whole_and_small() -> None:
    manifest = json.loads((shipped() / MANIFEST).read_text())
    assert {"en", "zh", "pl", "sr", "he", "ms", "es", "de", "fr", "lid"} <= manifest.keys()
    size = 0
    for language in manifest:
        model = load_model(shipped(), language)  # checks each file's hash
        assert model is not None and model.info.trained_on
        size += (shipped() / manifest[language]["file"]).stat().st_size
    assert size <= 15 * 2**20


@pytest.mark.parametrize(
    ("text", "language", "label"),
    [
        ("Paczka nie dotarła, obsługa klienta nie odpowiada. Masakra", "pl", "negative"),
        ("Dziękuję, świetna obsługa i szybka dostawa!", "pl", "positive"),
        ("Dostava kasni već dve nedelje, niko ne odgovara na pozive", "sr", "negative"),
        ("快递太慢了，客服态度也很差", "zh", "negative"),
        ("質量很好，物流很快，非常滿意", "zh", "positive"),
        ("השירות גרוע, חיכיתי שעה ואף אחד לא ענה", "he", "negative"),
        ("Servicio pésimo, llevo una semana esperando mi pedido", "es", "negative"),
        ("Le colis n'est jamais arrivé et personne ne répond, honteux", "fr", "negative"),
        ("Unmöglicher Kundenservice, seit Tagen keine Antwort", "de", "negative"),
        ("Teruk betul servis, dah seminggu tunggu barang tak sampai", "ms", "negative"),
    ],
)
def test_each_shipped_language_reads_plain_complaints_and_praise(
    text: str, language: str, label: str
) -> None:
    found = ComplaintAwareScorer().score(text)
    assert (found.language, found.label) == (language, label)


def test_a_batch_gives_what_one_by_one_gives() -> None:
    scorer = ComplaintAwareScorer()
    posts = [
        Post("still waiting for my refund, third email this week"),
        Post("Paczka nie dotarła, masakra"),
        Post(""),
        Post("Merci pour la livraison rapide", "fr"),
        Post("🙂🙂"),
    ]
    assert scorer.score_many(posts) == [scorer.score(p.text, language=p.language) for p in posts]


def write_csv(path: Path, rows: list[Example]) -> None:
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["label", "text"])
        writer.writerows((e.label, e.text) for e in rows)


def test_train_ship_writes_checked_models_from_labelled_csvs(
    examples: list[Example], tmp_path: Path
) -> None:
    public = tmp_path / "public"
    public.mkdir()
    write_csv(public / "en.csv", examples)
    rng = random.Random(5)
    write_csv(public / "pl.csv", [Example(invented(FILLER, rng), e.label) for e in examples])
    out = tmp_path / "models"
    result = CliRunner().invoke(
        app, ["train", "--from-csv", str(public), "--ship", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "en: held out negative_precision 1.0" in result.output
    model = load_model(out, "en")
    assert model is not None and model.info.trained_on[0]["rows"] == 240  # 80 % of 300
    assert model.info.figures["negative_shift"] == 0.0  # nothing to gain on a set read right
    assert model.info.figures["cv_negative_f1"] == 1.0
    assert load_model(out, "lid") is not None


def test_train_says_what_is_missing(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["train", "--ship"])
    assert result.exit_code == 2
    assert "--ship needs --from-csv DIR and --out DIR" in result.output
    result = CliRunner().invoke(app, ["train", "--add", "en"])
    assert result.exit_code == 2
    assert "expected LANGUAGE=FILE" in result.output


def test_the_teams_labels_train_a_model_that_reads_their_customers(tmp_path: Path) -> None:
    """A team whose customers say their order got "flurbed" (a word no lexicon knows) labels
    what they saw; `brandmon train` finds that a model trained on those labels beats today's
    scoring, writes it, and `brandmon score` then reads the word as they do."""
    rng = random.Random(11)
    objects = ["order", "parcel", "booking", "ticket", "account", "delivery"]
    posts = []
    for n in range(80):
        said = "got flurbed again" if n % 2 == 0 else "was zinged this time"
        text = f"@acme my {rng.choice(objects)} {said}, the {rng.choice(objects)} is next #{n}"
        posts.append({"id": str(n), "source": "x", "text": text, "published_at": "2026-11-20"})
    jsonl = tmp_path / "posts.jsonl"
    jsonl.write_text("".join(json.dumps(p) + "\n" for p in posts), encoding="utf-8")
    models = tmp_path / "models"
    config = tmp_path / "brandmon.toml"
    config.write_text(
        f'[storage]\nurl = "sqlite:///{tmp_path / "db.sqlite"}"\n\n'
        f'[sentiment]\nmodels = "{models}"\n\n'
        '[[brands]]\nname = "Acme"\nhandles = ["@acme"]\n',
        encoding="utf-8",
    )
    runner = CliRunner()
    assert (
        runner.invoke(app, ["ingest", "--jsonl", str(jsonl), "--config", str(config)]).exit_code
        == 0
    )
    storage = Storage(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        for mention in storage.mentions(limit=1000):
            flurbed = "flurbed" in mention.text
            storage.label_mention(mention.id, "negative" if flurbed else "positive")
        storage.label_mention(storage.mentions(limit=1)[0].id, "negative")
    finally:
        storage.close()

    result = runner.invoke(app, ["train", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "en: 80 labels; today negative F1 0.00" in result.output
    assert "better: written" in result.output
    assert load_model(models, "en") is not None

    scored = runner.invoke(
        app, ["score", "--config", str(config)], input="@acme my booking got flurbed\n"
    )
    assert json.loads(scored.stdout)["label"] == "negative"
    shipped_reading = ComplaintAwareScorer().score("@acme my booking got flurbed")
    assert shipped_reading.label != "negative"  # what the team's model learnt


def test_train_needs_a_place_for_the_teams_models(tmp_path: Path) -> None:
    config = tmp_path / "brandmon.toml"
    config.write_text(
        f'[storage]\nurl = "sqlite:///{tmp_path / "db.sqlite"}"\n\n'
        '[[brands]]\nname = "Acme"\nkeywords = ["acme"]\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["train", "--config", str(config)])
    assert result.exit_code == 2
    assert "set [sentiment] models in the config, or pass --out DIR" in result.output


def test_models_read_short_posts_in_scripts_without_spaces() -> None:
    found = ComplaintAwareScorer().score("太差了")  # "too bad", one run of three letters
    assert (found.language, found.label, found.confidence) == ("zh", "negative", "high")


@pytest.mark.parametrize(
    "text",
    [
        "Found a cockroach in my burger, I got food poisoning @acme",
        "מצאתי ג׳וק בהמבורגר וקיבלתי הרעלת מזון",
        "Znalazłem karalucha w burgerze, zatrucie pokarmowe",
        "在汉堡里发现了蟑螂，食物中毒了",
        "Saya jumpa lipas dalam burger, keracunan makanan",
    ],
)
def test_a_safety_complaint_is_a_crisis_risk_in_every_language(text: str) -> None:
    sentiment = ComplaintAwareScorer().score(text)
    verdict = triage(text, sentiment, 0.0)
    assert (sentiment.label, verdict.category, verdict.priority) == (
        "negative",
        "crisis_risk",
        "P1",
    )
