import pytest
import torch

from cnnkit.data.tokenize import PAD, UNK, ZHANG2015_ALPHABET, Vocab, build_vocab, encode, tokenize
from cnnkit.errors import DataError


def test_word_tokens_keep_inner_apostrophes_and_split_punctuation():
    assert tokenize("It's a Test, isn't it?") == ["it's", "a", "test", ",", "isn't", "it", "?"]
    assert tokenize("Ab", lowercase=False, level="char") == ["A", "b"]


def test_vocab_min_count_max_size_and_ties_broken_alphabetically():
    texts = ["b a c c", "a b c d"]
    v = build_vocab(texts, min_count=2)
    assert v.itos == [PAD, UNK, "c", "a", "b"]  # c: 3, then a and b: 2 each, alphabetically; d: 1, dropped
    assert build_vocab(texts, max_size=1).itos == [PAD, UNK, "c"]
    assert build_vocab(reversed(texts), min_count=2).itos == v.itos  # file order does not matter


def test_encode_pads_truncates_and_maps_unknowns():
    v = build_vocab(["x y"], max_length=3)
    assert encode(["y x", "y x y x", "zzz", ""], v).tolist() == [[3, 2, 0], [3, 2, 3], [1, 0, 0], [0, 0, 0]]


def test_character_vocabulary_is_the_papers_alphabet_read_backwards():
    v = build_vocab([], level="char", max_length=5)
    assert v.itos[2:] == list(ZHANG2015_ALPHABET) and v.reverse
    ids = encode(["ab\u00e9"], v)[0].tolist()
    assert ids == [1, v.stoi["b"], v.stoi["a"], 0, 0]  # backward; é is outside the alphabet


def test_json_round_trip_and_bad_records():
    v = build_vocab(["a b"], max_length=7)
    again = Vocab.from_json(v.to_json())
    assert again.itos == v.itos and again.max_length == 7 and again.level == "word"
    for bad in [None, {"format": "x"}, {**v.to_json(), "itos": ["a", "b"]}, {**v.to_json(), "max_length": 0},
                {**v.to_json(), "itos": [PAD, UNK, "a", "a"]}]:
        with pytest.raises(DataError):
            Vocab.from_json(bad)


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="min_count"):
        build_vocab([], min_count=0)
    with pytest.raises(ValueError, match="level"):
        tokenize("a", level="byte")
    assert encode(["a"], build_vocab(["a"], max_length=2)).dtype == torch.long
