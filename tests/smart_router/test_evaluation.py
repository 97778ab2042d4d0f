"""The word error rate every WER bound in the tests and the local run relies on."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smart_router.evaluation import normalise, wer


@pytest.mark.parametrize(
    ("reference", "hypothesis", "expected"),
    [
        ("the cat sat on the mat", "the cat sat on the mat", 0.0),
        # one substitution in four words
        ("a b c d", "a x c d", 0.25),
        # one deletion
        ("a b c d", "a b d", 0.25),
        # one insertion
        ("a b c d", "a b c c d", 0.25),
        # substitution + deletion over six reference words
        ("the cat sat on the mat", "the cat sit on mat", 2 / 6),
        # insertions can take the rate past 1
        ("hello", "hello there my friend", 3.0),
        # nothing recognised: every reference word deleted
        ("vi pratade om biblioteket", "", 1.0),
        # word order matters: a swap is two edits
        ("ett två", "två ett", 1.0),
    ],
)
def test_known_rates(reference: str, hypothesis: str, expected: float) -> None:
    assert wer(reference, hypothesis) == pytest.approx(expected)


def test_case_and_punctuation_are_not_errors() -> None:
    assert (
        wer("The weather is nice today, so we walked.", "the weather is NICE today so we walked")
        == 0
    )


def test_swedish_letters_are_letters_and_count_when_wrong() -> None:
    assert normalise("Vädret är fint, så vi gick!") == ["vädret", "är", "fint", "så", "vi", "gick"]
    # a decomposed ä (a + combining diaeresis) is the same word
    decomposed = unicodedata.normalize("NFD", "vädret är fint")
    assert wer("vädret är fint", decomposed) == 0
    # ...but dropping the diaeresis is a different word: two of three wrong
    assert wer("vädret är fint", "vadret ar fint") == pytest.approx(2 / 3)


def test_apostrophes_stay_inside_words_and_hyphens_split() -> None:
    assert normalise("Don't stop") == ["don't", "stop"]
    assert wer("don't stop", "dont stop") == 0.5
    assert normalise("train-station") == ["train", "station"]


def test_empty_reference() -> None:
    assert wer("", "") == 0.0
    assert wer("...", "") == 0.0
    assert wer("", "something") == 1.0


_words = st.lists(st.sampled_from(["vi", "är", "park", "lunch", "the", "cat"]), max_size=12)


@given(_words, _words)
def test_bounded_by_the_longer_sequence(reference: list[str], hypothesis: list[str]) -> None:
    ref, hyp = " ".join(reference), " ".join(hypothesis)
    rate = wer(ref, hyp)
    assert rate >= 0
    if reference:
        # Edit distance is at most the longer length, at least the length difference.
        assert rate * len(reference) <= max(len(reference), len(hypothesis)) + 1e-9
        assert rate * len(reference) >= abs(len(reference) - len(hypothesis)) - 1e-9
    assert wer(ref, ref) == 0
