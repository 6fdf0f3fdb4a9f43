from __future__ import annotations

import pytest

from rsvlm.tasks.chat.normalize import contains_phrase, first_number, normalize_answer, words_to_numbers
from rsvlm.tasks.chat.protocols import Normalisation, load_protocol

VQA = load_protocol("vqa-rsvqa/1").normalisation


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("there are twelve trees", "there are 12 trees"),
        ("twenty-one", "21"),
        ("one hundred and five", "105"),
        ("a hundred cars", "100 cars"),
        ("a dozen", "12"),
        ("one thousand two hundred and thirty four", "1234"),
        ("ten thousand", "10000"),
        ("two three", "2 3"),  # two numbers, not 5
        ("fifty and five", "50 and 5"),  # "and" joins only after hundred/thousand
        ("hundreds of trees", "hundreds of trees"),  # no number stated
        ("zero", "0"),
        ("a lot", "a lot"),
    ],
)
def test_words_to_numbers(text: str, expected: str) -> None:
    assert words_to_numbers(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Yes, there is a road.", "yes there is road"),
        ("It is an Urban area.", "it is urban"),  # synonym "urban area" -> "urban"
        ("Between 10 m² and 100 square meters", "between 10m2 and 100m2"),
        ("1,234 m^2", "1234m2"),
        ("10623 m2", "10623m2"),
        ("2.5 metres squared", "2.5m2"),
        ("Twelve!", "12"),
        ("  THE   answer  ", "answer"),
    ],
)
def test_vqa_normalisation(text: str, expected: str) -> None:
    assert normalize_answer(text, VQA) == expected


def test_each_step_is_a_switch() -> None:
    assert normalize_answer("The Twelve, Trees!", Normalisation()) == "The Twelve, Trees!"
    assert normalize_answer("The Twelve, Trees!", Normalisation(lowercase=True)) == "the twelve, trees!"
    rules = Normalisation(lowercase=True, strip_punctuation=True, number_words=True)
    assert normalize_answer("The Twelve, Trees!", rules) == "the 12 trees"


def test_first_number_and_phrases() -> None:
    assert first_number("about 30 or 40") == 30.0
    assert first_number("2.5m2") == 2.5
    assert first_number("none") is None
    assert contains_phrase("two parking lots and a parking", "parking lot") == 4
    assert contains_phrase("a churches", "church") == 2  # plural "es"
    assert contains_phrase("bridges", "bridge") == 0
    assert contains_phrase("residential", "dense residential") is None
    assert contains_phrase("seaside", "sea") is None  # whole words only
