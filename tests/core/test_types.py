"""rlt.types validate shapes and finiteness on construction, naming the field."""

import numpy as np
import pytest

from rlt.types import ActionChunk, EpisodeEvent, Source, Transition


def test_chunk_shape_must_match_axis_names():
    with pytest.raises(ValueError, match=r"ActionChunk\.data: expected shape \?x3, got 10x4"):
        ActionChunk(np.zeros((10, 4)), ("a", "b", "c"))
    assert ActionChunk(np.zeros((10, 4)), ("a", "b", "c", "d"), Source.HUMAN).chunk_len == 10


def test_transition_checks_every_field():
    good = dict(
        rl_token=np.zeros(8),
        proprio=np.zeros(12),
        action=np.zeros((10, 4)),
        reference=np.zeros((10, 4)),
        rewards=np.zeros(10),
        done=False,
        intervened=False,
        next_rl_token=np.zeros(8),
        next_proprio=np.zeros(12),
        next_reference=np.zeros((10, 4)),
    )
    Transition(**good)
    with pytest.raises(ValueError, match=r"Transition\.next_rl_token: expected shape 8, got 7"):
        Transition(**{**good, "next_rl_token": np.zeros(7)})
    with pytest.raises(ValueError, match=r"Transition\.reference: non-finite value nan at index \[2, 1\]"):
        bad = np.zeros((10, 4))
        bad[2, 1] = np.nan
        Transition(**{**good, "reference": bad})


def test_unknown_event_is_rejected():
    with pytest.raises(ValueError):
        EpisodeEvent(event=99)
