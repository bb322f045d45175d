"""Triage treats the same complaint alike in every supported language.

A customer who finds glass in a burger is a crisis risk whether they write in English, Hebrew
or Malay; an account problem goes to the team that fixes accounts, and someone who wants to buy
is a sales lead, in any language.  The phrases below are written as people post them (typos
and all), not copied from the rules.
"""

from __future__ import annotations

import pytest

from monitor.assessment import assess
from monitor.scoring import Post, Sentiment
from monitor.scoring.complaints import ComplaintAwareScorer
from monitor.triage import triage

SAFETY = {
    "en": [
        "Got food poisoning after eating at Acme last night",
        "Found glass in my burger from Acme!!",
        "My kid got sick after the Acme kids meal",
    ],
    "he": [
        "חטפתי הרעלת מזון אחרי ארוחה ב-Acme",
        "מצאתי חתיכת זכוכית בהמבורגר של Acme",
        "הבת שלי חלתה אחרי שאכלנו ב-Acme אתמול",
    ],
    "pl": [
        "Zatrułem się po kebabie z Acme, cała noc z głową w toalecie",
        "Znalazłam kawałek szkła w burgerze z Acme",
        "Moje dziecko zachorowało po obiedzie w Acme",
    ],
    "zh": [
        "在Acme吃完晚饭全家食物中毒了",
        "Acme的汉堡里吃出了玻璃渣，太可怕了",
        "我孩子在Acme吃完就病了，现在还在医院",
    ],
    "es": [
        "Me intoxiqué después de cenar en Acme, toda la noche vomitando",
        "Encontré un trozo de vidrio en mi hamburguesa de Acme",
        "Mi hijo se enfermó después de comer en Acme",
    ],
    "de": [
        "Lebensmittelvergiftung nach dem Essen bei Acme, die ganze Familie lag flach",
        "Hab Glas in meinem Burger von Acme gefunden!!",
        "Mein Kind ist nach dem Essen bei Acme krank geworden",
    ],
    "fr": [
        "Intoxication alimentaire après un repas chez Acme, toute la famille malade",
        "J'ai trouvé un bout de verre dans mon burger Acme",
        "Mon fils est tombé malade après avoir mangé chez Acme",
    ],
    "ms": [
        "Satu keluarga keracunan makanan lepas makan kat Acme semalam",
        "Saya jumpa serpihan kaca dalam burger Acme",
        "Anak saya muntah-muntah dan jatuh sakit lepas makan di Acme",
    ],
    "sr": [
        "Otrovao sam se posle ručka u Acme, ceo dan povraćam",
        "Našao sam parče stakla u pljeskavici iz Acme",
        "Дете ми се разболело након ручка у Acme",
    ],
}
"""Three safety complaints per language: food poisoning, glass in the food, a sick child."""

EVERYDAY = {
    "en": "Acme delivery was late again and the fries were cold",
    "he": "המשלוח מ-Acme שוב איחר והצ'יפס הגיע קר",
    "pl": "Dostawa z Acme znowu spóźniona, frytki zimne",
    "zh": "Acme的外卖又迟到了，薯条都凉了",
    "es": "El pedido de Acme llegó tarde otra vez y las papas frías",
    "de": "Die Lieferung von Acme kam wieder zu spät und die Pommes waren kalt",
    "fr": "Encore une livraison Acme en retard et des frites froides",
    "ms": "Penghantaran Acme lambat lagi, kentang goreng dah sejuk",
    "sr": "Dostava iz Acme opet kasni, pomfrit stigao hladan",
}
"""A complaint that is no safety matter, to show the safety phrases are not too broad."""

ACCOUNT = {
    "en": "I can't log into my Acme account in the app, what do I do?",
    "he": "לא מצליח להתחבר לחשבון באפליקציה של Acme, מה עושים?",
    "pl": "Nie mogę zalogować się do konta w aplikacji Acme, co robić?",
    "zh": "Acme的app登录不了，密码重置也没用，怎么办？",
    "es": "No puedo entrar en mi cuenta de la app de Acme, ¿qué hago?",
    "de": "Ich kann mich nicht in mein Acme Konto einloggen, was tun?",
    "fr": "Impossible de me connecter à mon compte Acme, comment faire ?",
    "ms": "Tak boleh log masuk akaun Acme, macam mana nak buat?",
    "sr": "Ne mogu da se prijavim na nalog u Acme aplikaciji, šta da radim?",
}

PURCHASE = {
    "en": "How much is the family meal at Acme?",
    "he": "כמה עולה ארוחה משפחתית ב-Acme?",
    "pl": "Ile kosztuje zestaw rodzinny w Acme?",
    "zh": "Acme的全家桶套餐多少钱？",
    "es": "¿Cuánto cuesta el menú familiar de Acme?",
    "de": "Was kostet das Familienmenü bei Acme?",
    "fr": "Combien coûte le menu famille chez Acme ?",
    "ms": "Berapa harga set keluarga Acme?",
    "sr": "Koliko košta porodični meni u Acme?",
}


@pytest.fixture(scope="module")
def scorer() -> ComplaintAwareScorer:
    return ComplaintAwareScorer()


def categories(scorer: ComplaintAwareScorer, texts: list[str]) -> list[str]:
    found = assess(scorer, [(Post(text, brands=["Acme"]), 5.0) for text in texts])
    return [a.triage.category for a in found]


@pytest.mark.parametrize("language", sorted(SAFETY))
def test_a_safety_complaint_is_a_crisis_risk_in_every_language(
    scorer: ComplaintAwareScorer, language: str
) -> None:
    texts = SAFETY[language]
    assert categories(scorer, texts) == ["crisis_risk"] * len(texts)


@pytest.mark.parametrize("language", sorted(EVERYDAY))
def test_an_everyday_complaint_is_not_a_crisis_risk(
    scorer: ComplaintAwareScorer, language: str
) -> None:
    assert categories(scorer, [EVERYDAY[language]]) != ["crisis_risk"]


@pytest.mark.parametrize("language", sorted(ACCOUNT))
def test_an_account_problem_goes_to_the_technical_team(
    scorer: ComplaintAwareScorer, language: str
) -> None:
    assert categories(scorer, [ACCOUNT[language]]) == ["account_or_technical_question"]


@pytest.mark.parametrize("language", sorted(PURCHASE))
def test_a_wish_to_buy_is_a_purchase_request(scorer: ComplaintAwareScorer, language: str) -> None:
    assert categories(scorer, [PURCHASE[language]]) == ["purchase_or_service_request"]


@pytest.mark.parametrize("language", sorted(SAFETY.keys() - {"en"}))  # English: by its rules
@pytest.mark.parametrize("read_as", [None, "en", "de", "ja"])
def test_a_safety_phrase_is_a_crisis_risk_whatever_language_the_post_was_read_as(
    language: str, read_as: str | None
) -> None:
    # a post mixing languages, or a source reporting the wrong one, still pages the team
    text = SAFETY[language][0]
    read = Sentiment(compound=0.0, label="neutral", language=read_as)
    assert triage(text, read, 5.0).category == "crisis_risk"
