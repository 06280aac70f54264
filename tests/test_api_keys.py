"""Callers and keys: three kinds, scopes, 401/403/404, hashing, last use, revoke, rotate."""

from __future__ import annotations

import hashlib

from sqlalchemy import text

from tests.conftest import Api


async def test_no_key_is_401_problem(api: Api) -> None:
    response = await api.client.get("/v1/partners")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert body["code"] == "missing_api_key" and body["status"] == 401


async def test_unknown_key_is_401(api: Api) -> None:
    response = await api.client.get("/v1/partners", headers=api.bearer("qpa_not-a-real-key"))
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_api_key"


async def test_partner_key_on_admin_route_is_403(api: Api) -> None:
    _, key = await api.register()
    response = await api.client.get("/v1/partners", headers=api.bearer(key))
    assert response.status_code == 403
    assert response.json()["code"] == "admin_key_required"


async def test_partner_key_reading_another_partner_is_404(api: Api) -> None:
    mine, my_key = await api.register()
    theirs, _ = await api.register()
    for path in ("", "/status-history", "/identifiers", "/standing", "/api-keys", "/agreement-acceptances"):
        response = await api.client.get(f"/v1/partners/{theirs['id']}{path}", headers=api.bearer(my_key))
        assert response.status_code == 404, path
        assert response.json()["code"] == "partner_not_found"
    own = await api.client.get(f"/v1/partners/{mine['id']}", headers=api.bearer(my_key))
    assert own.status_code == 200
    patch = await api.client.patch(
        f"/v1/partners/{theirs['id']}", json={"company": "Hijacked"}, headers=api.bearer(my_key)
    )
    assert patch.status_code == 404


async def test_partner_cannot_revoke_another_partners_key(api: Api) -> None:
    mine, my_key = await api.register()
    theirs, their_key = await api.register()
    their_keys = await api.client.get(f"/v1/partners/{theirs['id']}/api-keys", headers=api.bearer(their_key))
    their_key_id = their_keys.json()["items"][0]["id"]
    response = await api.client.delete(f"/v1/partners/{mine['id']}/api-keys/{their_key_id}", headers=api.bearer(my_key))
    assert response.status_code == 404
    assert response.json()["code"] == "api_key_not_found"
    still = await api.client.get(f"/v1/partners/{theirs['id']}", headers=api.bearer(their_key))
    assert still.status_code == 200


async def test_read_scope_cannot_write(api: Api) -> None:
    reader = await api.issue_key("admin", ["read"])
    partner, _ = await api.register()
    assert (await api.client.get("/v1/partners", headers=api.bearer(reader))).status_code == 200
    response = await api.client.post(
        f"/v1/partners/{partner['id']}/suspend", json={"reason": "x"}, headers=api.bearer(reader)
    )
    assert response.status_code == 403
    assert response.json()["code"] == "scope_missing"


async def test_store_key_is_not_an_admin(api: Api) -> None:
    store = await api.issue_key("store", ["store"])
    assert store.startswith("qps_")
    response = await api.client.get("/v1/partners", headers=api.bearer(store))
    assert response.status_code == 403


async def test_scopes_must_fit_the_kind(api: Api) -> None:
    response = await api.client.post(
        "/v1/api-keys", json={"kind": "store", "name": "x", "scopes": ["write"]}, headers=api.admin
    )
    assert response.status_code == 422
    assert response.json()["code"] == "unknown_scope"


async def test_keys_have_a_prefix_per_kind_and_enough_entropy(api: Api) -> None:
    _, partner_key = await api.register()
    admin_key = await api.issue_key("admin")
    assert partner_key.startswith("qpp_") and admin_key.startswith("qpa_")
    # 32 random bytes, base64url: 43 characters after the prefix, i.e. 256 bits.
    assert len(partner_key) == 4 + 43 and len(admin_key) == 4 + 43


async def test_database_holds_no_plaintext_key(api: Api) -> None:
    _, partner_key = await api.register()
    admin_key = await api.issue_key("admin")
    assert api.connection is not None
    tables = [
        row[0]
        for row in (
            await api.connection.execute(
                text("SELECT name FROM sqlite_master WHERE type = 'table'")
                if api.connection.dialect.name == "sqlite"
                else text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            )
        ).all()
    ]
    assert "api_keys" in tables and "audit_events" in tables
    dump = ""
    for table in tables:
        dump += repr([tuple(r) for r in (await api.connection.execute(text(f'SELECT * FROM "{table}"'))).all()])
    for key in (partner_key, admin_key, api.admin_key):
        assert key not in dump
        assert key[4:] not in dump
        assert hashlib.sha256(key.encode()).hexdigest() in dump


async def test_listing_shows_prefix_and_never_the_key(api: Api) -> None:
    admin_key = await api.issue_key("admin", ["read"])
    response = await api.client.get("/v1/api-keys", headers=api.admin)
    assert response.status_code == 200
    listed = {k["prefix"]: k for k in response.json()["items"]}
    assert admin_key[:12] in listed
    assert "key" not in listed[admin_key[:12]]
    assert admin_key not in response.text
    assert listed[admin_key[:12]]["scopes"] == ["read"]


async def test_last_used_is_written_at_most_once_a_minute(api: Api) -> None:
    reader = await api.issue_key("admin", ["read"])

    async def last_used() -> str | None:
        keys = (await api.client.get("/v1/api-keys", headers=api.admin)).json()["items"]
        return next(k["last_used_at"] for k in keys if reader.startswith(k["prefix"]))

    assert await last_used() is None
    await api.client.get("/v1/partners", headers=api.bearer(reader))
    first = await last_used()
    assert first is not None
    api.clock.advance(seconds=59)
    await api.client.get("/v1/partners", headers=api.bearer(reader))
    assert await last_used() == first
    api.clock.advance(seconds=2)
    await api.client.get("/v1/partners", headers=api.bearer(reader))
    assert await last_used() != first


async def test_revoked_key_is_refused(api: Api) -> None:
    other = await api.issue_key("admin")
    keys = (await api.client.get("/v1/api-keys", headers=api.admin)).json()["items"]
    key_id = next(k["id"] for k in keys if other.startswith(k["prefix"]))
    revoked = await api.client.delete(f"/v1/api-keys/{key_id}", headers=api.admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    again = await api.client.delete(f"/v1/api-keys/{key_id}", headers=api.admin)
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]
    response = await api.client.get("/v1/partners", headers=api.bearer(other))
    assert response.status_code == 401
    listed = (await api.client.get("/v1/api-keys", headers=api.admin)).json()["items"]
    assert key_id not in {k["id"] for k in listed}
    with_revoked = (await api.client.get("/v1/api-keys?include_revoked=true", headers=api.admin)).json()["items"]
    assert key_id in {k["id"] for k in with_revoked}


async def test_partner_rotates_its_key(api: Api) -> None:
    partner, key = await api.register()
    keys = (await api.client.get(f"/v1/partners/{partner['id']}/api-keys", headers=api.bearer(key))).json()["items"]
    assert len(keys) == 1
    rotated = await api.client.post(
        f"/v1/partners/{partner['id']}/api-keys/{keys[0]['id']}/rotate", headers=api.bearer(key)
    )
    assert rotated.status_code == 201, rotated.text
    new_key = rotated.json()["key"]
    assert new_key != key and rotated.json()["name"] == keys[0]["name"]
    assert (await api.client.get(f"/v1/partners/{partner['id']}", headers=api.bearer(key))).status_code == 401
    assert (await api.client.get(f"/v1/partners/{partner['id']}", headers=api.bearer(new_key))).status_code == 200


async def test_partner_creates_and_revokes_extra_keys(api: Api) -> None:
    partner, key = await api.register()
    created = await api.client.post(
        f"/v1/partners/{partner['id']}/api-keys", json={"name": "crm"}, headers=api.bearer(key)
    )
    assert created.status_code == 201
    extra = created.json()
    assert extra["kind"] == "partner" and extra["partner_id"] == partner["id"]
    revoked = await api.client.delete(f"/v1/partners/{partner['id']}/api-keys/{extra['id']}", headers=api.admin)
    assert revoked.status_code == 200
    assert (await api.client.get(f"/v1/partners/{partner['id']}", headers=api.bearer(extra["key"]))).status_code == 401


async def test_admin_cannot_create_partner_keys_for_a_partner(api: Api) -> None:
    partner, _ = await api.register()
    response = await api.client.post(f"/v1/partners/{partner['id']}/api-keys", json={"name": "x"}, headers=api.admin)
    assert response.status_code == 403
    assert response.json()["code"] == "partner_key_required"


async def test_terminated_partner_cannot_get_new_keys(api: Api) -> None:
    partner, key = await api.register()
    keys = (await api.client.get(f"/v1/partners/{partner['id']}/api-keys", headers=api.bearer(key))).json()["items"]
    await api.client.post(f"/v1/partners/{partner['id']}/terminate", json={"reason": "x"}, headers=api.admin)
    rotated = await api.client.post(
        f"/v1/partners/{partner['id']}/api-keys/{keys[0]['id']}/rotate", headers=api.bearer(key)
    )
    assert rotated.status_code == 403 and rotated.json()["code"] == "partner_terminated"
    created = await api.client.post(
        f"/v1/partners/{partner['id']}/api-keys", json={"name": "x"}, headers=api.bearer(key)
    )
    assert created.status_code == 403
    assert created.json()["code"] == "partner_terminated"


async def test_suspended_partner_cannot_create_or_rotate_keys(api: Api) -> None:
    partner, key = await api.register()
    keys = (await api.client.get(f"/v1/partners/{partner['id']}/api-keys", headers=api.bearer(key))).json()["items"]
    suspended = await api.client.post(f"/v1/partners/{partner['id']}/suspend", json={"reason": "x"}, headers=api.admin)
    assert suspended.status_code == 200, suspended.text
    created = await api.client.post(
        f"/v1/partners/{partner['id']}/api-keys", json={"name": "x"}, headers=api.bearer(key)
    )
    assert created.status_code == 403
    assert created.json()["code"] == "partner_suspended"
    rotated = await api.client.post(
        f"/v1/partners/{partner['id']}/api-keys/{keys[0]['id']}/rotate", headers=api.bearer(key)
    )
    assert rotated.status_code == 403 and rotated.json()["code"] == "partner_suspended"
    listed = (await api.client.get(f"/v1/partners/{partner['id']}/api-keys", headers=api.bearer(key))).json()
    assert [k["id"] for k in listed["items"]] == [keys[0]["id"]]
