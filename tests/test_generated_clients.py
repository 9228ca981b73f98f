"""The generated typed clients, used on their own: requests, parsing, undocumented values."""

from __future__ import annotations

import importlib
import json
from typing import Any

import httpx
import pytest

from tests.cases import CASES, VENDORS, VendorCase, all_states, state_id


def _typed_client(case: VendorCase, handler: Any) -> Any:
    pkg = importlib.import_module(case.package)
    return pkg.AuthenticatedClient(
        base_url=case.base_url, token="sk-test-0123", httpx_args={"transport": httpx.MockTransport(handler)}
    )


@pytest.mark.parametrize("slug", VENDORS)
def test_package_imports_on_its_own(slug: str) -> None:
    pkg = importlib.import_module(f"{slug}_client")
    assert isinstance(pkg.AuthenticatedClient, type)
    assert isinstance(pkg.Client, type)


@pytest.mark.parametrize("slug", VENDORS)
def test_request_method_url_encoding_and_bearer(slug: str) -> None:
    case = CASES[slug]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=case.states[0].body)

    task_id = "a/b c?d#é"
    response = case.endpoint().sync_detailed(task_id, client=_typed_client(case, handler))
    assert response.status_code == 200
    (request,) = seen
    assert request.method == "GET"
    encoded = "a%2Fb%20c%3Fd%23%C3%A9"
    assert str(request.url) == case.base_url + case.path.format(id=encoded)
    assert request.headers["authorization"] == "Bearer sk-test-0123"


@pytest.mark.parametrize(("slug", "sc"), all_states(), ids=[state_id(x) for x in all_states()])
def test_documented_body_parses_into_the_typed_model(slug: str, sc: Any) -> None:
    case = CASES[slug]
    response = case.endpoint().sync_detailed(
        "t-1", client=_typed_client(case, lambda r: httpx.Response(200, json=sc.body))
    )
    model = response.parsed
    assert isinstance(model, case.model_class())
    value: Any = model
    for attr in case.enum_field:
        value = getattr(value, attr)
    assert value == sc.vendor_state
    assert model.to_dict() == sc.body  # nothing the vendor sent is lost


@pytest.mark.parametrize(
    "slug", [s for s in VENDORS if CASES[s].error_body is not None and CASES[s].error_status != 200]
)
def test_documented_error_body_parses(slug: str) -> None:
    case = CASES[slug]
    response = case.endpoint().sync_detailed(
        "t-1", client=_typed_client(case, lambda r: httpx.Response(case.error_status or 400, json=case.error_body))
    )
    assert response.status_code == case.error_status
    assert response.parsed.to_dict() == case.error_body


class TestUndocumentedEnumValues:
    """Vendors add states without notice: the typed client keeps the raw value."""

    @pytest.mark.parametrize("slug", VENDORS)
    def test_documented_value_is_a_real_member(self, slug: str) -> None:
        enum = CASES[slug].enum_class()
        documented = CASES[slug].states[0].vendor_state
        member = enum(documented)
        assert member in list(enum)
        assert member.is_documented

    @pytest.mark.parametrize("slug", VENDORS)
    def test_undocumented_value_parses_and_round_trips(self, slug: str) -> None:
        case = CASES[slug]
        body: dict[str, Any] = json.loads(json.dumps(case.states[0].body))
        target = body
        for key in case.enum_field[:-1]:
            target = target[key]
        target[case.enum_field[-1]] = "cancelled_by_moderator"

        response = case.endpoint().sync_detailed(
            "t-1", client=_typed_client(case, lambda r: httpx.Response(200, json=body))
        )
        value: Any = response.parsed
        for attr in case.enum_field:
            value = getattr(value, attr)
        assert isinstance(value, case.enum_class())
        assert value.value == "cancelled_by_moderator"
        assert str(value) == "cancelled_by_moderator"
        assert not value.is_documented
        assert value not in list(case.enum_class())
        assert response.parsed.to_dict() == body

    def test_non_string_is_still_rejected(self) -> None:
        with pytest.raises(ValueError, match="is not a valid"):
            CASES["vozo"].enum_class()(42)


def test_typed_client_repr_hides_the_token() -> None:
    case = CASES["vozo"]
    client = _typed_client(case, lambda r: httpx.Response(200, json={"status": "done"}))
    case.endpoint().sync_detailed("t", client=client)  # builds the httpx client and its Authorization header
    assert "sk-test-0123" not in repr(client)
    assert "sk-test-0123" not in str(client)


def test_ezmodel_pages_own_json_examples_parse_into_the_typed_models() -> None:
    """The examples are read from the vendor's page itself, not copied into the test."""
    from ezmodel_client.models import EzmodelErrorResponse, EzmodelVideo, EzmodelVideoStatus

    from scripts import specs

    page = (specs.SPECS / "ezmodel" / "source.md").read_text(encoding="utf-8")
    examples = [json.loads(b.text) for b in specs.fenced_blocks(page) if b.language == "json"]
    videos = [EzmodelVideo.from_dict(e) for e in examples if "status" in e]
    errors = [EzmodelErrorResponse.from_dict(e) for e in examples if "status" not in e]
    assert [v.status for v in videos] == [
        EzmodelVideoStatus.PROCESSING,
        EzmodelVideoStatus.COMPLETED,
        EzmodelVideoStatus.FAILED,
    ]
    assert [e.error.code for e in errors] == ["task_not_found"]
    assert [v.to_dict() for v in videos] + [e.to_dict() for e in errors] == examples
