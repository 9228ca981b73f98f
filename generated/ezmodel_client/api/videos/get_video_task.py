from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.ezmodel_error_response import EzmodelErrorResponse
from ...models.ezmodel_video import EzmodelVideo
from ...types import Response


def _get_kwargs(
    task_id: str,
) -> dict[str, Any]:

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/videos/{task_id}".format(
            task_id=quote(str(task_id), safe=""),
        ),
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> EzmodelErrorResponse | EzmodelVideo | None:
    if response.status_code == 200:
        response_200 = EzmodelVideo.from_dict(response.json())

        return response_200

    if response.status_code == 404:
        response_404 = EzmodelErrorResponse.from_dict(response.json())

        return response_404

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[EzmodelErrorResponse | EzmodelVideo]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    task_id: str,
    *,
    client: AuthenticatedClient | Client,
) -> Response[EzmodelErrorResponse | EzmodelVideo]:
    """Sora Get Video Task Status

     Query the status and detailed information of a specified video task. Used for polling task progress
    and retrieving the generated video URL (OpenAI-compatible).

    Args:
        task_id (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[EzmodelErrorResponse | EzmodelVideo]
    """

    kwargs = _get_kwargs(
        task_id=task_id,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    task_id: str,
    *,
    client: AuthenticatedClient | Client,
) -> EzmodelErrorResponse | EzmodelVideo | None:
    """Sora Get Video Task Status

     Query the status and detailed information of a specified video task. Used for polling task progress
    and retrieving the generated video URL (OpenAI-compatible).

    Args:
        task_id (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        EzmodelErrorResponse | EzmodelVideo
    """

    return sync_detailed(
        task_id=task_id,
        client=client,
    ).parsed


async def asyncio_detailed(
    task_id: str,
    *,
    client: AuthenticatedClient | Client,
) -> Response[EzmodelErrorResponse | EzmodelVideo]:
    """Sora Get Video Task Status

     Query the status and detailed information of a specified video task. Used for polling task progress
    and retrieving the generated video URL (OpenAI-compatible).

    Args:
        task_id (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[EzmodelErrorResponse | EzmodelVideo]
    """

    kwargs = _get_kwargs(
        task_id=task_id,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    task_id: str,
    *,
    client: AuthenticatedClient | Client,
) -> EzmodelErrorResponse | EzmodelVideo | None:
    """Sora Get Video Task Status

     Query the status and detailed information of a specified video task. Used for polling task progress
    and retrieving the generated video URL (OpenAI-compatible).

    Args:
        task_id (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        EzmodelErrorResponse | EzmodelVideo
    """

    return (
        await asyncio_detailed(
            task_id=task_id,
            client=client,
        )
    ).parsed


def build_request_kwargs(
    task_id: str,
) -> dict[str, Any]:
    """The keyword arguments of ``httpx.Client.build_request`` for this endpoint: method, URL
    relative to the client's ``base_url``, and any params, headers and body. ``sync_detailed``
    and ``asyncio_detailed`` send exactly this request."""
    return _get_kwargs(
        task_id=task_id,
    )
