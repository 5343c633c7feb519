"""The speed patch of emulator.moto_serving: it answers as moto does, at less cost."""

import re
from typing import Any

import pytest
from moto.backends import list_of_moto_modules
from moto.core import responses
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    create_backend_app,
)

from emulator import moto_patches, moto_serving
from tests.integration.moto_helpers import counting

LOOKUP = "method_names_from_class"  # moto.core.responses imports it, without exporting it
REQUEST_ID = "gen_amzn_requestid_long"  # the same
SERVING = ("dispatch-cache",)
"""The patches of ``emulator.moto_serving``, whatever ``BLOG_MOTO_SPEED_PATCHES`` says."""


# -- the dispatch and the action lookup -----------------------------------------------------


def test_moto_lists_its_package_for_every_dispatch_and_the_mend_once_per_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import moto.backends

    # GIVEN moto's dispatcher, unmended
    listings = counting(monkeypatch, moto.backends, "list_of_moto_modules")
    dispatcher = DomainDispatcherApplication(create_backend_app)
    host = "dynamodb.us-east-1.amazonaws.com"
    # WHEN it finds the service of 5 requests to one host
    before = [dispatcher.get_backend_for_host(host) for _ in range(5)]
    # THEN it listed its package 5 times
    assert len(listings) == 5
    # AND mended, it lists it once for that host, and answers as before
    moto_patches.apply(*SERVING)
    try:
        listings.clear()
        after = [dispatcher.get_backend_for_host(host) for _ in range(5)]
        assert len(listings) == 1
        assert after == before == ["dynamodb"] * 5
        assert dispatcher.get_backend_for_host("sqs.us-east-1.amazonaws.com") == "sqs"
        assert len(listings) == 2
    finally:
        moto_patches.remove()
    assert "dynamodb" in list_of_moto_modules()


def test_action_lookup_is_computed_once_per_class_when_mended() -> None:
    from moto.dynamodb.responses import DynamoHandler
    from moto.sqs.responses import SQSResponse

    original = getattr(responses, LOOKUP)
    moto_patches.apply(*SERVING)
    try:
        cached = getattr(responses, LOOKUP)
        assert cached is not original
        assert cached(DynamoHandler) == original(DynamoHandler)
        assert "put_item" in cached(DynamoHandler)
        assert cached(SQSResponse) == original(SQSResponse)
        assert cached(DynamoHandler) is cached(DynamoHandler)
    finally:
        moto_patches.remove()
    assert getattr(responses, LOOKUP) is original


# -- the request id ---------------------------------------------------------------------------


def test_request_id_is_drawn_in_one_call_from_motos_seedable_random(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto.moto_api._internal import mock_random
    from moto.utilities.aws_headers import gen_amzn_requestid_long

    # GIVEN moto's random, counted
    picks = counting(monkeypatch, mock_random, "choice")
    draws = counting(monkeypatch, mock_random, "choices")
    # WHEN moto makes a request id, and the mend makes two from the same seed
    theirs = gen_amzn_requestid_long()
    headers: dict[str, Any] = {}
    mock_random.seed(7)
    mine = moto_serving._request_id(headers)
    mock_random.seed(7)
    again = moto_serving._request_id()
    # THEN both are 52 letters and digits; moto picked 52 times, the mend drew once per id
    assert re.fullmatch("[A-Za-z0-9]{52}", theirs)
    assert re.fullmatch("[A-Za-z0-9]{52}", mine)
    assert (len(picks), len(draws)) == (52, 2)
    # AND the seed still decides the id, and the answer's headers carry it
    assert again == mine == headers["x-amzn-requestid"]
    # AND apply() puts it where moto's answers take their id from, and remove() puts back moto's
    moto_patches.apply(*SERVING)
    try:
        assert getattr(responses, REQUEST_ID) is moto_serving._request_id
    finally:
        moto_patches.remove()
    assert getattr(responses, REQUEST_ID) is gen_amzn_requestid_long
