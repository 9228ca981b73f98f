from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.colossyan_job import ColossyanJob
from ...types import Response


def _get_kwargs(
    video_generation_job_id: str,
) -> dict[str, Any]:

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/video-generation-jobs/{video_generation_job_id}".format(
            video_generation_job_id=quote(str(video_generation_job_id), safe=""),
        ),
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Any | ColossyanJob | None:
    if response.status_code == 200:
        response_200 = ColossyanJob.from_dict(response.json())

        return response_200

    if response.status_code == 400:
        response_400 = cast(Any, None)
        return response_400

    if response.status_code == 401:
        response_401 = cast(Any, None)
        return response_401

    if response.status_code == 404:
        response_404 = cast(Any, None)
        return response_404

    if response.status_code == 500:
        response_500 = cast(Any, None)
        return response_500

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[Any | ColossyanJob]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    video_generation_job_id: str,
    *,
    client: AuthenticatedClient | Client,
) -> Response[Any | ColossyanJob]:
    """Get video generation job status

     Retrieves the status, progress, and details of a specific video generation job.

    Args:
        video_generation_job_id (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | ColossyanJob]
    """

    kwargs = _get_kwargs(
        video_generation_job_id=video_generation_job_id,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    video_generation_job_id: str,
    *,
    client: AuthenticatedClient | Client,
) -> Any | ColossyanJob | None:
    """Get video generation job status

     Retrieves the status, progress, and details of a specific video generation job.

    Args:
        video_generation_job_id (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | ColossyanJob
    """

    return sync_detailed(
        video_generation_job_id=video_generation_job_id,
        client=client,
    ).parsed


async def asyncio_detailed(
    video_generation_job_id: str,
    *,
    client: AuthenticatedClient | Client,
) -> Response[Any | ColossyanJob]:
    """Get video generation job status

     Retrieves the status, progress, and details of a specific video generation job.

    Args:
        video_generation_job_id (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | ColossyanJob]
    """

    kwargs = _get_kwargs(
        video_generation_job_id=video_generation_job_id,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    video_generation_job_id: str,
    *,
    client: AuthenticatedClient | Client,
) -> Any | ColossyanJob | None:
    """Get video generation job status

     Retrieves the status, progress, and details of a specific video generation job.

    Args:
        video_generation_job_id (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | ColossyanJob
    """

    return (
        await asyncio_detailed(
            video_generation_job_id=video_generation_job_id,
            client=client,
        )
    ).parsed


def build_request_kwargs(
    video_generation_job_id: str,
) -> dict[str, Any]:
    """The keyword arguments of ``httpx.Client.build_request`` for this endpoint: method, URL
    relative to the client's ``base_url``, and any params, headers and body. ``sync_detailed``
    and ``asyncio_detailed`` send exactly this request."""
    return _get_kwargs(
        video_generation_job_id=video_generation_job_id,
    )
