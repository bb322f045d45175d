"""Language detection on short social posts (sentences invented for these tests)."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from monitor.scoring.language import FUNCTION_WORDS, LETTERS, SHIPPED, detect_language
from monitor.scoring.limits import SCORED_CHARS

POSTS = {
    "en": [
        "@acme my order is late again https://acme.example/t/1",
        "@acme why is the app down #fail",
        "Thanks @acme, the new headphones are great",
    ],
    "es": [
        "@acme llevo tres días esperando mi pedido y nadie me contesta",
        "Hola @acme, ¿cuándo llega el paquete? Ya pasó una semana #envío",
        "El servicio de @acme es muy lento, estoy harto https://acme.example/es",
    ],
    "pt": [
        "@acme meu pedido ainda não chegou, já faz duas semanas",
        "Muito obrigado @acme, vocês são demais! #atendimento",
        "Alguém sabe se a loja da @acme abre hoje? https://acme.example/pt",
    ],
    "it": [
        "@acme il mio ordine non è ancora arrivato, che vergogna",
        "Grazie @acme, servizio molto veloce anche questa volta #felice",
        "Perché il sito di @acme è sempre giù? https://acme.example/it",
    ],
    "fr": [
        "@acme ma commande n'est toujours pas arrivée, c'est nul",
        "Merci @acme pour le remboursement, très rapide #content",
        "Pourquoi l'appli @acme plante encore? https://acme.example/fr",
    ],
    "de": [
        "@acme meine Bestellung ist immer noch nicht angekommen",
        "Danke @acme, der Kundendienst war sehr freundlich #zufrieden",
        "Warum ist die App von @acme schon wieder kaputt? https://acme.example/de",
    ],
    "pl": [
        "@acme paczka nadal nie dotarła, jestem zły",
        "Dziękuję @acme, wszystko przyszło na czas #polecam",
        "Czy ktoś wie, dlaczego aplikacja @acme nie działa? https://acme.example/pl",
    ],
    "sr": [
        "@acme čekam porudžbinu već dve nedelje, niko ne odgovara",
        "Hvala @acme, sve je stiglo na vreme #super",
        "Zašto aplikacija od @acme opet ne radi? https://acme.example/sr",
    ],
    "ms": [
        "@acme pesanan saya belum sampai lagi, kenapa lambat sangat",
        "Terima kasih @acme, makanan sedap dan cepat #puas",
        "Dah dua hari tunggu, tak ada orang jawab pun https://acme.example/my",
    ],
    "he": ["@acme ההזמנה שלי עדיין לא הגיעה", "תודה @acme, שירות מעולה #מרוצה"],
    "zh": ["@acme 我的快递还没到，客服也不回复", "谢谢 @acme，服务很好 https://acme.example/zh"],
    "ar": ["@acme طلبي لم يصل بعد، خدمة سيئة", "شكرا @acme على الخدمة الممتازة #رائع"],
    "hi": ["@acme मेरा ऑर्डर अभी तक नहीं आया", "धन्यवाद @acme, बहुत अच्छी सेवा"],
}


@pytest.mark.parametrize(
    ("language", "text"), [(lang, text) for lang, texts in POSTS.items() for text in texts]
)
def test_short_posts_with_handles_links_and_tags(language: str, text: str) -> None:
    assert detect_language(text) == language


def test_every_shipped_language_is_tested() -> None:
    assert set(POSTS) == set(SHIPPED)


@pytest.mark.parametrize(
    "text",
    [
        "@acme my parcel is late",
        "@acme where is my refund",
        "Acme support never called back",
        "@acme_help why did you cancel my order",
        "@acme is the store open today?",
        "Does @acme deliver on Sundays?",
        "@acme thanks, sorted now",
    ],
)
def test_short_english_posts_to_a_brand_are_english(text: str) -> None:
    assert detect_language(text) == "en"


def test_the_source_hint_wins() -> None:
    assert detect_language("@acme my order is late", "pl-PL") == "pl"
    assert detect_language("快递还没到", "en_GB") == "en"
    assert detect_language("Hvala, sve je stiglo", "hr") == "hr"


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Acme 快递 late", "zh"),
        ("Acme שירות ok", "he"),
        ("Acme خدمة ok", "ar"),
        ("Acme सेवा ok", "hi"),
        ("Acme услуга ok", "sr"),
        ("Храна је била хладна", "sr"),
    ],
)
def test_a_script_only_one_shipped_language_uses_decides(text: str, language: str) -> None:
    assert detect_language(text) == language


def test_croatian_and_indonesian_are_read_as_serbian_and_malay() -> None:
    assert detect_language("Narudžba još nije stigla, nitko se ne javlja") == "sr"
    assert detect_language("Pesanan saya belum datang, kok lama banget sih") == "ms"


@pytest.mark.parametrize("text", ["", "   ", "😡😡😡", "👍 🔥", "12:30 !!! ???", "Καλημέρα"])
def test_text_with_no_language_we_can_tell_is_none(text: str) -> None:
    assert detect_language(text) is None


def test_tags_are_read_when_they_are_all_the_text_has() -> None:
    assert detect_language("#nicht #mehr #mit #der #bahn") == "de"
    assert detect_language("@acme https://acme.example #win") in ("en", None)


def test_each_common_word_and_letter_belongs_to_one_language() -> None:
    owners = Counter(w for words in FUNCTION_WORDS.values() for w in set(words))
    owners.update(letter for letters in LETTERS.values() for letter in letters)
    assert [w for w, n in owners.items() if n > 1] == []


@pytest.mark.parametrize(
    "text",
    [
        "x" * 1_000_000,
        "słowo " * 200_000,
        "Ovo je " + "qwzx" * 250_000,
        "@acme " * 200_000,
        "#tag" * 250_000,
        ("la " * 5 + "ą" * 300 + " ") * 2_000,
    ],
)
def test_huge_or_hostile_text_stays_bounded(text: str) -> None:
    detect_language("warm up the slow mode: Ovo je bilo")  # lingua loads its models once
    detect_language("x" * 200)
    started = time.perf_counter()
    detect_language(text)
    assert time.perf_counter() - started < 1.0
    assert len(text) > SCORED_CHARS


@pytest.mark.parametrize(
    "text",
    [
        "ugh @acme done w this bs",
        "@acme wtf is this",
        "LOL @acme u serious rn",
        "@acme @acmehelp yo still waiting",
    ],
)
def test_short_slangy_english_posts_to_a_brand_are_english(text: str) -> None:
    assert detect_language(text) == "en"


def test_lingua_slow_mode_runs_only_when_its_fast_mode_and_the_model_disagree(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lingua import Language

    from monitor.scoring import language as detection

    class Unsure:
        """lingua's fast mode leaning to Polish, not sure of it."""

        def compute_language_confidence_values(self, text: str) -> list:
            return [type("Value", (), {"language": Language.POLISH, "value": 0.6})()]

    class Slow:
        asked: list[frozenset[str]] = []

        def __init__(self, names: frozenset[str]) -> None:
            self.names = names

        def detect_language_of(self, text: str) -> Language:
            Slow.asked.append(self.names)
            return Language.SERBIAN

    monkeypatch.setattr(detection, "_fast_detector", Unsure)
    monkeypatch.setattr(detection, "_slow_detector", Slow)
    assert detection._lingua("zupa koro", "pl") == "pl"
    assert Slow.asked == []
    assert detection._lingua("zupa koro", "sr") == "sr"
    assert detection._lingua("zupa koro") == "sr"
    # the slow mode chooses among what the fast mode found likely and what the model leant to
    assert Slow.asked == [{"POLISH", "SERBIAN", "CROATIAN", "BOSNIAN"}, {"POLISH"}]


@pytest.mark.parametrize(
    "text", ["network problem hai kya", "sim block ho gaya", "recharge nahi hua"]
)
def test_a_hindi_word_in_latin_letters_and_no_other_languages_is_hindi(text: str) -> None:
    # lingua, which would decide otherwise, knows no Hindi in Latin letters
    assert detect_language(text) == "hi"
