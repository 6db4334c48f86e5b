"""Reading the agent's answers: JSON refused when two of its keys could be
read as one (as the Go client refuses it), the error body turned into the
package's exceptions, and the agent's (Go's) timestamps. Used for the
socket's answers (_transport) and the CLI's JSON output (_cli) alike."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import List, Tuple

from ._errors import KcAgentError, LoginRequired

# The keys of the answers this package reads (the token and proof answers, the error
# body, /v1/proxy, the sign-in answer, /v1/status): a key spelled like one of these in other letter case is
# refused, as the Go client refuses one spelled like a key it reads (see
# loads_answer). Add a key here when you read a new one.
ANSWER_KEYS = frozenset(
    """access_token id_token token_type proof expires_at expires_in error message hint
    configured running addr url ca_bundle routes name upstream profile warnings refused
    id flow state joined expires_at verification_uri verification_uri_complete user_code qr_svg
    authorization_url identity preferred_username sub email version client_id client_name
    started_at interval kept_in offline_expires_in profiles sign_ins user""".split()
)

AMBIGUOUS_ANSWER = "the agent's answer has a duplicate key (or two spellings of one key); refusing it"


def _fold_char(c: str) -> str:
    # The class is closed under one-character lower() and upper(): k, K
    # and the Kelvin sign; s, S and the long s; sigma's three forms.
    orbit, todo = {c}, [c]
    while todo:
        x = todo.pop()
        for y in (x.lower(), x.upper()):
            if len(y) == 1 and y not in orbit:
                orbit.add(y)
                todo.append(y)
    return min(orbit)


def fold(key: str) -> str:
    """One spelling per simple case-folding class, as Go's strings.EqualFold
    (and so encoding/json) compares keys: "Access_Token", "ACCESS_TOKEN" and
    "acce\u017f\u017f_token" (long s) all fold to one."""
    if key.isascii():
        # Every answer's every key comes here: an ASCII key folds to its
        # upper case (an ASCII letter's class holds its two cases and at
        # most a non-ASCII letter, which sorts after them), at a fraction
        # of the cost of the general loop (tests/test_client.py holds the
        # two to the same answers).
        return key.upper()
    return "".join(_fold_char(c) for c in key)


_FOLDED_KEYS = {fold(k): k for k in ANSWER_KEYS}


class _AmbiguousAnswer(Exception):
    pass


def _unique_keys(pairs: List[Tuple[str, object]]) -> dict:
    seen = set()
    for k, _ in pairs:
        f = fold(k)
        if f in seen or _FOLDED_KEYS.get(f, k) != k:
            raise _AmbiguousAnswer()
        seen.add(f)
    return dict(pairs)


def loads_answer(raw) -> object:
    """json.loads, refusing (KcAgentError) an answer in which any object has
    two keys that fold alike or a key spelled like one of the protocol's in
    other letter case: json keeps the last exact match and Go's
    encoding/json the last case-insensitive one, so such an answer would
    mean one token here and another to the Go CLI (see
    ipc/testdata/duplicate_keys.json). ValueError when raw is not JSON."""
    try:
        return json.loads(raw, object_pairs_hook=_unique_keys)
    except _AmbiguousAnswer:
        raise KcAgentError(AMBIGUOUS_ANSWER, code="internal") from None


def api_error(status: int, doc: dict) -> KcAgentError:
    code = str(doc.get("error") or "internal")
    msg = str(doc.get("message") or f"the agent answered HTTP {status}")
    # The agent's hints name CLI flags; here the knob is a parameter.
    hint = str(doc.get("hint") or "").replace("--min-valid", "min_valid")
    if status == 401 or code in ("login_required", "unknown_profile"):
        return LoginRequired(msg, hint=hint, code=code)
    return KcAgentError(msg, hint=hint, code=code)


def parse_time(s: str) -> datetime:
    s = s.strip()
    if s.endswith("Z") or s.endswith("z"):
        s = s[:-1] + "+00:00"
    # Go may print any number of fractional digits; Python 3.9 wants 0, 3 or 6.
    m = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)$", s)
    if m and m.group(2):
        s = m.group(1) + (m.group(2) + "000000")[:7] + m.group(3)
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt

