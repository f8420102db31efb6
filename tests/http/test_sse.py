"""streams.http.sse: frames that an independent parser (httpx-sse) reads back exactly."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.http.sse import Comment, Event, encode
from tests.support.sse import frames

# Text built from pieces that stress a parser: every line break, field-like
# prefixes, separators str.splitlines() would wrongly split on, and unicode.
line_breaky_text = st.lists(
    st.one_of(
        st.sampled_from(["\n", "\r", "\r\n", " ", ":", "data: x", "\u2028", "\x0b", "\ufeff"]),
        st.text(alphabet=st.characters(blacklist_categories=["Cs"])),
    )
).map("".join)
field_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n\0"),
)


def parse(body: bytes) -> list[tuple[str, str, str]]:
    return [(event.event, event.data, event.id) for event in frames(body)]


@given(data=line_breaky_text, event=field_text.filter(bool), id_=field_text)
def test_any_text_round_trips_through_an_independent_parser(data, event, id_):
    frame = encode(Event(data=data, event=event, id=id_))

    # Normalise what the spec says a parser does: every line break becomes \n.
    expected = data.replace("\r\n", "\n").replace("\r", "\n")
    assert parse(frame) == [(event, expected, id_)]


@given(st.lists(line_breaky_text, max_size=5))
def test_consecutive_events_stay_apart(datas):
    body = b"".join(encode(Event(data=d, id=str(i))) for i, d in enumerate(datas))
    parsed = parse(body)
    assert [p[1] for p in parsed] == [d.replace("\r\n", "\n").replace("\r", "\n") for d in datas]
    assert [p[2] for p in parsed] == [str(i) for i in range(len(datas))]


@given(line_breaky_text)
def test_comments_are_invisible_to_parsers(text):
    body = encode(Comment(text)) + encode(Event(data="after"))
    assert [p[1] for p in parse(body)] == ["after"]


def test_empty_data_is_one_empty_data_line():
    assert encode(Event(data="")) == b"data: \n\n"


def test_a_leading_space_in_data_survives():
    assert encode(Event(data=" x")) == b"data:  x\n\n"


def test_every_kind_of_line_break_splits_data():
    assert encode(Event(data="a\r\nb\rc\nd", id="7", event="log")) == (
        b"id: 7\nevent: log\ndata: a\ndata: b\ndata: c\ndata: d\n\n"
    )


def test_retry_is_written_as_an_integer():
    assert encode(Event(data="x", retry=1500)) == b"retry: 1500\ndata: x\n\n"


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\0b"])
def test_line_breaks_and_nul_in_id_are_refused(bad):
    with pytest.raises(ValueError, match="id"):
        encode(Event(data="x", id=bad))


def test_line_breaks_in_event_name_are_refused():
    with pytest.raises(ValueError, match="event"):
        encode(Event(data="x", event="a\nb"))


def test_an_event_fanned_out_to_many_clients_is_framed_once():
    data = "line one\nline two"
    frames = {id(encode(Event(data, event="lines", id="7:42"))) for _ in range(1000)}
    assert len(frames) == 1
