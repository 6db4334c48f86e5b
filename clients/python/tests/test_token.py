from __future__ import annotations

import json
import pickle
import random
from datetime import datetime, timezone

import pytest

import kc_agent_client as kc
from kc_agent_client import _token

from conftest import TOKEN
from test_login import CAROL


def test_get_token_is_a_string_whose_repr_hides_it(agent):
    agent.token_answer = (200, {"access_token": CAROL, "token_type": "Bearer", "expires_at": "2030-01-02T03:04:05Z", "expires_in": 300})
    tok = kc.get_token()
    assert isinstance(tok, str) and isinstance(tok, kc.AccessToken)
    # What Jupyter's Out[] and a list show: whose, until when, no token.
    r = repr(tok)
    assert CAROL not in r and r.startswith("<access token for carol, expires ") and r.endswith(">")
    assert CAROL not in repr([tok]) and CAROL not in repr({"t": tok})
    # Every string use still gets the token.
    assert tok == CAROL and str(tok) == CAROL and type(str(tok)) is str
    assert f"Bearer {tok}" == "Bearer " + CAROL and "Bearer %s" % tok == "Bearer " + CAROL and "{}".format(tok) == CAROL
    assert json.loads(json.dumps({"t": tok}))["t"] == CAROL
    assert tok.encode() == CAROL.encode() and len(tok) == len(CAROL) and hash(tok) == hash(CAROL)
    assert tok.expires_at == datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    back = pickle.loads(pickle.dumps(tok))
    assert back == CAROL and repr(back) == r


def test_the_token_reaches_requests_and_ipython_hides_it(agent):
    tok = kc.get_token()
    assert tok == TOKEN and repr(tok).startswith("<access token, expires ")
    requests = pytest.importorskip("requests")
    # requests takes only an exact str as a whole header value (it checks
    # type(), not isinstance): "Bearer " + tok and str(tok) are exact.
    req = requests.Request("GET", "http://127.0.0.1/", headers={"Authorization": "Bearer " + tok, "X-Raw": str(tok)}).prepare()
    assert req.headers["Authorization"] == "Bearer " + TOKEN and req.headers["X-Raw"] == TOKEN
    assert requests.Request("GET", "http://127.0.0.1/", headers={"Authorization": f"Bearer {tok}"}).prepare().headers["Authorization"] == "Bearer " + TOKEN
    pretty = pytest.importorskip("IPython.lib.pretty")
    assert TOKEN not in pretty.pretty(tok) and pretty.pretty(tok) == repr(tok)


def test_claims_never_raise_on_garbage():
    # The payload is outside input (for display only): any string gives a
    # dict, never an exception.
    rng = random.Random(26)
    alphabet = "eyJ.-_=+/ab0\x00\xff{}\"[]"
    for _ in range(3000):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        assert isinstance(_token.claims(s), dict)
    assert _token.claims(CAROL)["preferred_username"] == "carol"
    assert _token.claims("a.W10.b") == {}  # a JSON list, not an object
    assert _token.claims("a." + "A" * (_token.MAX_PAYLOAD + 4) + ".b") == {}
