"""Generated and boundary metadata, shared by the Schemathesis suite and the handwritten tests.

The limits live only in prose in the upstream spec ("Set of 16 key-value pairs … Keys … maximum length of 64
characters. Values … maximum length of 512 characters", #/components/schemas/Metadata); spec/overlay.yaml
states them as schema keywords, and they are read from there (modmsg.spec.metadata_limits), never written twice.
"""

from __future__ import annotations

from hypothesis import strategies as st

from modmsg.spec import metadata_limits

MAX_KEYS = metadata_limits().keys  # MM-META-05 / MM-META-06
MAX_KEY_LENGTH = metadata_limits().key_length  # MM-META-05 / MM-META-07, code points (MM-META-18)
MAX_VALUE_LENGTH = metadata_limits().value_length  # MM-META-05 / MM-META-08, code points (MM-META-18)

# One character per UTF-8 width: 1, 2, 3 and 4 bytes (the last is astral: a UTF-16 surrogate pair).
WIDE_CHARACTERS = {"ascii": "k", "latin": "é", "euro": "€", "astral": "𝄞"}

# Pairs that a careless implementation normalises, trims, folds or drops; each must come back verbatim.
TRICKY_PAIRS: dict[str, str] = {
    "empty-value": "",
    "": "empty key",
    " leading-space": "value",
    "trailing-space ": " padded value ",
    "Case": "upper",
    "case": "lower",
    "tab\tkey": "line\nbreak\r\nvalue",
    "caf\u00e9": "NFC caf\u00e9",
    "cafe\u0301": "NFD cafe\u0301",
    "emoji-🦄": "astral 𝄞 and 🏳️‍🌈",
    "rtl": "שלום עליכם",
    "zero\u200bwidth": "\u200b",
    "k\u0435y": "cyrillic e look-alike",
    "quote\"'<>&": "</script><script>alert(1)</script>",
    "json": '{"nested": "not parsed"}',
    "numeric-looking": "0012",
}
assert len(TRICKY_PAIRS) == MAX_KEYS


def keys(count: int, prefix: str = "k") -> dict[str, str]:
    """``count`` distinct keys with short values."""
    return {f"{prefix}{i:02d}": f"v{i}" for i in range(count)}


def text_of_length(length: int, character: str = "k") -> str:
    """A string of exactly ``length`` code points made of ``character``."""
    return character * length


def metadata_key_text() -> st.SearchStrategy[str]:
    """Keys within the limit: any Unicode but surrogates, including empty, whitespace and astral."""
    alphabet = st.characters(exclude_categories=["Cs"])
    return st.one_of(
        st.sampled_from(sorted(TRICKY_PAIRS)),
        st.text(alphabet=alphabet, max_size=MAX_KEY_LENGTH),
        st.builds(text_of_length, st.just(MAX_KEY_LENGTH), st.sampled_from(sorted(WIDE_CHARACTERS.values()))),
    )


def metadata_value_text() -> st.SearchStrategy[str]:
    alphabet = st.characters(exclude_categories=["Cs"])
    return st.one_of(
        st.sampled_from(sorted(TRICKY_PAIRS.values())),
        st.text(alphabet=alphabet, max_size=64),
        st.builds(
            text_of_length,
            st.integers(0, MAX_VALUE_LENGTH),
            st.sampled_from(sorted(WIDE_CHARACTERS.values())),
        ),
    )


def valid_metadata(max_size: int = MAX_KEYS) -> st.SearchStrategy[dict[str, str]]:
    """Metadata maps every conformant server must accept and echo verbatim (MM-META-01, MM-GEN-01)."""
    return st.dictionaries(metadata_key_text(), metadata_value_text(), max_size=max_size)


NON_STRING_VALUES: tuple[object, ...] = (
    0,
    -1,
    1.5,
    True,
    False,
    None,
    {},
    {"a": "b"},
    [],
    ["x"],
)  # MM-META-09
NON_OBJECT_METADATA: tuple[object, ...] = ("text", "", 0, 1.5, True, [], [{"k": "v"}])  # MM-META-10


def non_string_value() -> st.SearchStrategy[object]:
    return st.sampled_from(NON_STRING_VALUES)


@st.composite
def metadata_one_past_a_limit(draw: st.DrawFn) -> tuple[str, dict[str, object]]:
    """(which limit, metadata) with exactly one defect: 17 keys, a 65-point key, a 513-point value or a non-string."""
    character = draw(st.sampled_from(sorted(WIDE_CHARACTERS.values())))
    kind = draw(st.sampled_from(("keys", "key_length", "value_length", "value_type")))
    if kind == "keys":
        return kind, dict(keys(MAX_KEYS + 1))
    if kind == "key_length":
        return kind, {text_of_length(MAX_KEY_LENGTH + 1, character): "v"}
    if kind == "value_length":
        return kind, {"k": text_of_length(MAX_VALUE_LENGTH + 1, character)}
    return kind, {"k": draw(non_string_value())}
