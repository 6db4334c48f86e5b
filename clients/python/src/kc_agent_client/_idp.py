"""Strings from the identity provider are data. The user code, the links,
error descriptions and names come from Keycloak through the agent; before a
terminal or a notebook shows one, control characters (escape sequences,
carriage returns, newlines that fake a line of ours), the marks that reorder
text and the line separators are removed. The same rule as the Go side
(internal/idptext Printable), held to the same vectors
(ipc/testdata/idp_strings.json). _signin applies it to every sign-in answer
as it reads one."""

from __future__ import annotations

# Directional marks, embeddings, overrides, isolates, line and paragraph
# separators.
_REORDER = frozenset([0x061C, 0x200E, 0x200F, 0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A)])


def _clean_char(c: str) -> str:
    r = ord(c)
    if r < 0x20 or 0x7F <= r <= 0x9F or r in _REORDER:
        return ""
    if 0xD800 <= r <= 0xDFFF:  # a lone surrogate from a JSON escape: Go reads U+FFFD
        return "\ufffd"
    return c


def printable(s: str) -> str:
    """s without the characters that can steer a terminal or a page."""
    return "".join(_clean_char(c) for c in s)

