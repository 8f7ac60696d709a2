"""CachedTokenizer returns the tokenizer's own rows and tokenises each string once."""
import pytest
import torch

from hyplib.data.token_cache import CachedTokenizer


def _counting_tokenizer():
    import open_clip
    tok = open_clip.SimpleTokenizer(context_length=16)
    seen = []

    def tokenize(texts):
        seen.extend(texts)
        return tok(list(texts))
    return tok, tokenize, seen


def test_rows_equal_the_tokenizer_and_repeats_are_not_tokenised_again():
    tok, tokenize, seen = _counting_tokenizer()
    cached = CachedTokenizer(tokenize)
    first = ["a red square", "a cat", "a red square", "two blue circles"]
    second = ["a cat", "a green star", "a red square"]
    torch.testing.assert_close(cached(first), tok(first), rtol=0, atol=0)
    torch.testing.assert_close(cached(second), tok(second), rtol=0, atol=0)
    assert seen == ["a red square", "a cat", "two blue circles", "a green star"]
    assert (cached.misses, cached.hits) == (4, 3)
    assert cached([]).shape == (0, 16)


def test_least_recently_used_string_is_forgotten_first():
    tok, tokenize, seen = _counting_tokenizer()
    cached = CachedTokenizer(tokenize, maxsize=2)
    cached(["a", "b"])
    cached(["a"])            # "a" is now the most recent
    cached(["c"])            # evicts "b"
    cached(["a", "b"])       # "a" cached, "b" tokenised again
    assert seen == ["a", "b", "c", "b"]
    torch.testing.assert_close(cached(["b", "a", "c"]), tok(["b", "a", "c"]), rtol=0, atol=0)
    with pytest.raises(ValueError, match="maxsize"):
        CachedTokenizer(tokenize, maxsize=0)
