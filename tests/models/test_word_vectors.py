import pytest
import torch

from cnnkit.errors import ConfigError
from cnnkit.models.word_vectors import read_word_vectors


def test_word2vec_header_cased_words_and_exact_match_wins(tmp_path):
    path = tmp_path / "w2v.txt"
    path.write_text("3 2\nThe 1 1\nthe 2 2\ncat 0.5 -0.5\n")
    vectors, found = read_word_vectors(path, ["<pad>", "the", "cat", "dog"])
    assert found.tolist() == [False, True, True, False]
    assert vectors[1].tolist() == [2.0, 2.0] and vectors[2].tolist() == [0.5, -0.5] and vectors[3].abs().sum() == 0


def test_lowercase_fallback(tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("Paris 1 0\n")
    vectors, found = read_word_vectors(path, ["paris"])
    assert found.tolist() == [True] and vectors[0].tolist() == [1.0, 0.0]


@pytest.mark.parametrize(
    ("content", "match"),
    [(b"a 1 2\nb 1\n", "line 2"), (b"a 1 x\n", "line 1"), (b"\x80\x81 1 2\n", "not UTF-8"), (b"", "no vectors")],
)
def test_bad_files_are_one_line_errors(tmp_path, content, match):
    path = tmp_path / "v.txt"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=match):
        read_word_vectors(path, ["a", "b"])


def test_missing_file_and_dimension(tmp_path):
    with pytest.raises(ConfigError, match="not a file"):
        read_word_vectors(tmp_path / "none.txt", ["a"])
    (tmp_path / "v.txt").write_text("a 1 2 3\n")
    with pytest.raises(ConfigError, match="embed_dim=3"):
        read_word_vectors(tmp_path / "v.txt", ["a"], dim=5)
    assert read_word_vectors(tmp_path / "v.txt", ["a"], dim=3)[0].shape == torch.Size([1, 3])
