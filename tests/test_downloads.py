"""Expiring download links: signed, streamed, refused once expired or tampered with."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from schemas.errors import MedialaneError, NotFound
from adapters.links import LinkExpired, sign, verify
from adapters.objects import ObjectStore
from test_rejections import expect_error


def path_of(url: str) -> str:
    return url[url.index("/v1/downloads/") :]


def test_a_link_names_its_object_until_it_expires(settings):
    url, expires_at = sign(settings, "tmp/a/b.jpg", "b.jpg", now=1000)
    token = url.rsplit("/", 1)[1]
    assert verify(settings, token, now=1000 + settings.link_ttl_seconds - 1) == ("tmp/a/b.jpg", "b.jpg")
    assert expires_at.timestamp() == 1000 + settings.link_ttl_seconds
    with pytest.raises(LinkExpired):
        verify(settings, token, now=1000 + settings.link_ttl_seconds)


@pytest.mark.parametrize("tamper", [lambda t: t[:-2] + "AA", lambda t: "x" + t, lambda t: t.split(".")[0]])
def test_a_tampered_link_is_not_found(settings, tamper):
    token = sign(settings, "tmp/a/b.jpg", "b.jpg")[0].rsplit("/", 1)[1]
    with pytest.raises(NotFound):
        verify(settings, tamper(token))


def test_a_link_signed_with_another_secret_is_not_found(settings):
    other = settings.model_copy(update={"link_secret": settings.link_secret.__class__("another")})
    token = sign(other, "tmp/a/b.jpg", "b.jpg")[0].rsplit("/", 1)[1]
    with pytest.raises(NotFound):
        verify(settings, token)


def test_no_link_is_signed_without_a_secret(settings):
    unset = settings.model_copy(update={"link_secret": settings.link_secret.__class__("")})
    with pytest.raises(MedialaneError, match="LINK_SECRET"):
        sign(unset, "tmp/a/b.jpg", "b.jpg")


async def test_download_streams_the_object(api, settings, stack):
    data = os.urandom(700 * 1024)
    await asyncio.to_thread(ObjectStore(settings).put_bytes, "tmp/tests/blob.bin", data)
    url, _ = sign(settings, "tmp/tests/blob.bin", "résumé copy.bin")

    async with api.get(path_of(url)) as response:
        body = await response.read()
        assert response.status == 200
        disposition = response.headers["Content-Disposition"]

    assert body == data
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9%20copy.bin" in disposition


async def test_expired_link_answers_410(api, settings, stack):
    url, _ = sign(settings, "tmp/tests/blob.bin", "blob.bin", now=time.time() - settings.link_ttl_seconds - 1)
    async with api.get(path_of(url)) as response:
        await expect_error(response, 410, "link_expired")


async def test_link_to_a_deleted_object_answers_404(api, settings, stack):
    url, _ = sign(settings, "tmp/tests/never-written.bin", "x.bin")
    async with api.get(path_of(url)) as response:
        await expect_error(response, 404, "download_not_found")


async def test_a_link_stops_working_when_its_shortened_lifetime_ends(api, settings, stack):
    await asyncio.to_thread(ObjectStore(settings).put_bytes, "tmp/tests/short.bin", b"soon gone")
    short_lived = settings.model_copy(update={"link_ttl_seconds": 1})
    url, _ = sign(short_lived, "tmp/tests/short.bin", "short.bin")
    async with api.get(path_of(url)) as response:
        assert response.status == 200
    await asyncio.sleep(1.1)
    async with api.get(path_of(url)) as response:
        await expect_error(response, 410, "link_expired")
