from __future__ import annotations

import pytest

from monitor.config import BrandConfig
from monitor.matching import BrandMatcher, normalize

ACME = BrandConfig(name="Acme", keywords=["acme"])


def matches(brand: BrandConfig, text: str) -> bool:
    return BrandMatcher([brand]).match(text) == [brand.name]


def test_normalize_folds_width_case_and_sharp_s() -> None:
    assert normalize("ＡＣＭＥ") == "acme"
    assert normalize("Straße") == normalize("STRASSE") == "strasse"


@pytest.mark.parametrize("text", ["Acme", "ACME", "aCmE", "ＡＣＭＥ", "ａｃｍｅ"])
def test_case_and_width_variants_match(text: str) -> None:
    assert matches(ACME, f"just bought {text} glue")


def test_case_folding_applies_to_terms_too() -> None:
    brand = BrandConfig(name="Großmarkt", keywords=["Großmarkt"])
    assert matches(brand, "Sale at GROSSMARKT today")
    assert matches(BrandConfig(name="Acme", keywords=["ＡＣＭＥ"]), "acme")


@pytest.mark.parametrize(
    "text",
    [
        "I love Acme!",
        "#acme",
        "@acme",
        "acme's new line",
        "an acme-branded mug",
        "(acme)",
        "«Acme»",
        '"acme"',
        "Acme.",
        "acme",
    ],
)
def test_whole_word_with_punctuation_around(text: str) -> None:
    assert matches(ACME, text)


@pytest.mark.parametrize("text", ["acmeville", "nonacme", "acme_corp", "acme2", "acmé"])
def test_term_inside_a_longer_word_does_not_match(text: str) -> None:
    assert not matches(ACME, text)


@pytest.mark.parametrize(
    "text",
    ["Acme Corp", "acme  corp", "acme\tcorp", "acme\n  corp", "acme\u00a0corp", "acme\u3000corp"],
)
def test_multi_word_term_accepts_any_whitespace_run(text: str) -> None:
    assert matches(BrandConfig(name="AC", aliases=["acme corp"]), f"news: {text} reports")


@pytest.mark.parametrize("text", ["acmecorp", "acme corporation", "acme, corp"])
def test_multi_word_term_needs_whole_words_and_whitespace(text: str) -> None:
    assert not matches(BrandConfig(name="AC", aliases=["acme corp"]), text)


def test_several_brands_come_back_in_config_order() -> None:
    matcher = BrandMatcher(
        [
            BrandConfig(name="Beta", keywords=["beta"]),
            BrandConfig(name="Gamma", keywords=["gamma"]),
            ACME,
        ]
    )
    assert matcher.match("Acme beats Beta") == ["Beta", "Acme"]
    assert matcher.match("Gamma") == ["Gamma"]
    assert matcher.match("nothing relevant") == []
    assert matcher.match("") == []


def test_brands_with_overlapping_terms_are_each_found() -> None:
    brands = [
        BrandConfig(name=name, keywords=[keyword], handles=[handle])
        for name, keyword, handle in [
            ("Acme", "acme", "acme"),
            ("Acme Bank", "acme bank", "acmebank"),
            ("Brand1", "brand1", "brand1"),
            ("Brand10", "brand10", "brand10"),
        ]
    ]
    matcher = BrandMatcher(brands)
    assert matcher.match("ACME BANK froze my card") == ["Acme", "Acme Bank"]
    assert matcher.match("@acmebank and brand10") == ["Acme Bank", "Brand10"]
    assert matcher.match("@acme\u2028bank, @brand1x") == ["Acme", "Acme Bank"]
    assert matcher.match("acmebankers brand100") == []


def test_cyrillic_whole_word() -> None:
    brand = BrandConfig(name="Sber", keywords=["Сбербанк"])
    assert matches(brand, "Я клиент Сбербанк, и всё хорошо.")
    assert matches(brand, "СБЕРБАНК")
    assert not matches(brand, "новый сбербанкомат")
    assert not matches(brand, "суперсбербанк")


@pytest.mark.parametrize("text", ["אני אוהב קוקה", "קנינו בקוקה", "ושקוקה", "הקוקה!", "מקוקה"])
def test_hebrew_term_matches_alone_or_with_prefix_letters(text: str) -> None:
    assert matches(BrandConfig(name="Coca", keywords=["קוקה"]), text)


@pytest.mark.parametrize("text", ["אקוקה", "רקוקה", "אבקוקה", "ושבקוקה", "קוקהלה"])
def test_hebrew_term_does_not_match_inside_other_words(text: str) -> None:
    assert not matches(BrandConfig(name="Coca", keywords=["קוקה"]), text)


def test_chinese_alias_matches_inside_a_sentence() -> None:
    brand = BrandConfig(name="Golden Crown", aliases=["金冠炸鸡"])
    assert matches(brand, "我昨天在金冠炸鸡吃饭")
    assert matches(brand, "用金冠炸鸡app点了2份")  # substring: Latin letters may touch it
    assert matches(brand, "第3金冠炸鸡店")
    assert not matches(brand, "我昨天在金冠炸吃饭")
    assert matches(BrandConfig(name="GC", aliases=["金冠 炸鸡"]), "金冠 \t 炸鸡很好吃")


def test_japanese_katakana_alias_matches_inside_a_sentence() -> None:
    brand = BrandConfig(name="Acme", aliases=["アクメ"])
    assert matches(brand, "昨日アクメの新製品を買った")
    assert matches(brand, "昨日ｱｸﾒの新製品を買った")  # half-width katakana
    assert not matches(brand, "昨日アクの新製品を買った")


@pytest.mark.parametrize("text", ["삼성전자가 발표했다", "삼성은 좋다", "나는 삼성 폰을 쓴다"])
def test_korean_term_matches_with_attached_particles(text: str) -> None:
    assert matches(BrandConfig(name="Samsung", aliases=["삼성"]), text)


def test_thai_term_matches_inside_a_sentence() -> None:
    assert matches(BrandConfig(name="Coke", aliases=["โค้ก"]), "ฉันชอบดื่มโค้กมาก")


def test_latin_term_next_to_cjk_characters_matches() -> None:
    assert matches(ACME, "我喜欢Acme产品")
    assert matches(ACME, "アクメ=acmeです")


def test_combining_marks_continue_a_word() -> None:
    brand = BrandConfig(name="Bharat", keywords=["भारत"])
    assert matches(brand, "भारत में नया स्टोर")
    assert not matches(brand, "भारती एयरटेल")


@pytest.mark.parametrize("handle", ["@acme", "acme", "@ACME", "＠ａｃｍｅ"])
def test_handle_with_or_without_at_sign_matches(handle: str) -> None:
    brand = BrandConfig(name="Acme", handles=[handle])
    assert matches(brand, "thanks @Acme!")
    assert matches(brand, "@acme: where is my order?")


@pytest.mark.parametrize("text", ["ask @acme_support", "@acmeville", "mail bob@acme.com", "acme"])
def test_handle_needs_the_exact_at_token(text: str) -> None:
    assert not matches(BrandConfig(name="Acme", handles=["@acme"]), text)


@pytest.mark.parametrize("hashtag", ["#acme", "acme", "#ACME"])
def test_hashtag_with_or_without_hash_matches(hashtag: str) -> None:
    assert matches(BrandConfig(name="Acme", hashtags=[hashtag]), "so good #Acme #blessed")


def test_hashtag_must_not_continue_into_a_longer_tag() -> None:
    assert not matches(BrandConfig(name="Acme", hashtags=["#acme"]), "#acmefail again")
    assert not matches(BrandConfig(name="Acme", hashtags=["#acme"]), "acme")
    assert not matches(BrandConfig(name="Acme", hashtags=["#acme"]), "#acme很好")
    assert matches(BrandConfig(name="Acme", hashtags=["#AcmeFail"]), "#acmefail again")


CARTOON_AWARE = BrandConfig(
    name="Acme", keywords=["acme"], handles=["@acme"], exclude=["acme anvil", "looney tunes"]
)


@pytest.mark.parametrize(
    "text",
    [
        "Wile E. Coyote ordered an ACME  anvil",
        "Looney Tunes marathon, sponsored by Acme",
        "@acme is basically the looney\ttunes company",
    ],
)
def test_exclusion_term_vetoes_the_brand(text: str) -> None:
    assert not matches(CARTOON_AWARE, text)


def test_exclusion_uses_the_same_word_rules_and_only_vetoes_its_brand() -> None:
    assert matches(CARTOON_AWARE, "Acme shipped my order")
    assert matches(CARTOON_AWARE, "acme anvils are on sale")  # "acme anvil" is not a whole word
    matcher = BrandMatcher([CARTOON_AWARE, BrandConfig(name="Beta", keywords=["beta"])])
    assert matcher.match("Beta and the Acme anvil") == ["Beta"]


def test_blank_terms_are_ignored() -> None:
    ghost = BrandConfig.model_construct(
        name="Ghost", keywords=["", "   "], aliases=["\t"], handles=["@", " "], hashtags=["#"]
    )
    # Config validation rejects a brand whose terms are all blank; the matcher must not rely on it.
    blank = BrandConfig.model_construct(name="Blank", keywords=[" "])
    matcher = BrandMatcher([ghost, blank, BrandConfig.model_construct(name="Empty")])
    for text in ["", " ", "anything at all", "@ # @x #y"]:
        assert matcher.match(text) == []


def test_blank_terms_do_not_widen_or_veto_a_brand() -> None:
    brand = BrandConfig(name="Acme", keywords=["", "acme"], exclude=["", "  "])
    assert matches(brand, "acme")
    assert not matches(brand, "something else")
