"""Tests of lib.text: the HTML that highlights a rationale mask over tokens."""

import re
from html.parser import HTMLParser

import numpy as np
import pytest
import torch
from IPython.display import HTML

from lib.text import DROPPED_TEXT, KEPT_BACKGROUND, highlight_tokens

TOKENS = ["the", "acting", "was", "<b>great</b>", "&", "fun"]


class TokenSpans(HTMLParser):
    """An independent reader of the output: the text and style of every token span."""

    def __init__(self):
        super().__init__()
        self.spans = []  # (style, title, text)
        self._open = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "span" and "title" in attrs:
            self._open = [attrs["style"], attrs["title"], ""]

    def handle_data(self, data):
        if self._open is not None:
            self._open[2] += data

    def handle_endtag(self, tag):
        if tag == "span" and self._open is not None:
            self.spans.append(tuple(self._open))
            self._open = None


def spans_of(out):
    parser = TokenSpans()
    parser.feed(out.data)
    parser.close()
    return parser.spans


def test_kept_tokens_are_highlighted_and_dropped_ones_grey():
    mask = [1, 0, 0, 1, 0, 1]
    spans = spans_of(highlight_tokens(TOKENS, mask))
    assert [s[2] for s in spans] == TOKENS  # text round-trips through escaping
    for (style, title, _), m in zip(spans, mask):
        assert (f"background-color:{KEPT_BACKGROUND}" in style) == bool(m)
        assert (f"color:{DROPPED_TEXT}" in style) == (not m)
        assert title.startswith("kept") == bool(m)


def test_returns_ipython_html_with_inline_styles_only():
    out = highlight_tokens(TOKENS, [0, 1, 0, 0, 0, 0])
    assert isinstance(out, HTML)
    assert "<style" not in out.data and "class=" not in out.data and "<script" not in out.data
    assert "<b>great</b>" not in out.data and "&lt;b&gt;great&lt;/b&gt;" in out.data


@pytest.mark.parametrize("mask", [
    [True, False, False, True, False, True],
    np.array([1, 0, 0, 1, 0, 1]),
    torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 1.0]),
    torch.tensor([1, 0, 0, 1, 0, 1]),
])
def test_mask_types_give_the_same_html(mask):
    assert highlight_tokens(TOKENS, mask).data == highlight_tokens(TOKENS, [1, 0, 0, 1, 0, 1]).data


def test_several_masks_give_one_row_each_with_labels():
    masks = torch.tensor([[1, 0, 0, 0, 0, 0], [0, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]])
    out = highlight_tokens(TOKENS, masks, labels=["s1", "s2", "s3"])
    spans = spans_of(out)
    assert len(spans) == 3 * len(TOKENS)
    kept = [s[1].startswith("kept") for s in spans]
    assert kept == masks.flatten().bool().tolist()
    assert all(label in out.data for label in ("s1", "s2", "s3"))


def test_probs_set_bar_opacity_and_tooltip():
    probs = [0.0, 0.25, 0.5, 0.75, 1.0, 0.125]
    spans = spans_of(highlight_tokens(TOKENS, [0, 1, 0, 1, 1, 0], probs=probs))
    for (style, title, _), p in zip(spans, probs):
        alpha = float(re.search(r"rgba\(\d+,\d+,\d+,([\d.]+)\)", style).group(1))
        assert alpha == pytest.approx(p, abs=1e-3)
        assert f"P(keep) = {p:.2f}" in title


def test_legend_can_be_switched_off():
    with_legend = highlight_tokens(TOKENS, [1, 0, 0, 0, 0, 0]).data
    without = highlight_tokens(TOKENS, [1, 0, 0, 0, 0, 0], legend=False).data
    assert "token has z = 1" in with_legend and "token has z = 1" not in without


@pytest.mark.parametrize("tokens,mask,kwargs,error,match", [
    ("the acting", [1, 0], {}, TypeError, "split"),
    ([], [], {}, ValueError, "at least one token"),
    (["a", 3], [1, 0], {}, TypeError, r"tokens\[1\]"),
    (["a", "b"], [1, 0, 1], {}, ValueError, "one entry per token"),
    (["a", "b"], [[[1, 0]]], {}, ValueError, "shape"),
    (["a", "b"], [1, 0.5], {}, ValueError, "0 or 1"),
    (["a", "b"], "10", {}, TypeError, "mask"),
    (["a", "b"], [1, 0], {"probs": [0.5, 1.5]}, ValueError, r"\[0, 1\]"),
    (["a", "b"], [1, 0], {"probs": [0.5, float("nan")]}, ValueError, r"\[0, 1\]"),
    (["a", "b"], [1, 0], {"probs": [0.5]}, ValueError, "one keep probability per token"),
    (["a", "b"], [[1, 0], [0, 1]], {"labels": ["only one"]}, ValueError, "one entry per mask"),
    (["a", "b"], [1, 0], {"legend": 1}, TypeError, "legend"),
])
def test_bad_input_is_refused_with_a_message(tokens, mask, kwargs, error, match):
    with pytest.raises(error, match=match):
        highlight_tokens(tokens, mask, **kwargs)
