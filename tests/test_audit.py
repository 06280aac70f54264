"""Every admin action and every partner state change is an append-only audit row."""

from __future__ import annotations

from tests.conftest import Api


async def test_admin_actions_and_state_changes_are_audited(api: Api) -> None:
    partner, key = await api.register()
    pid = partner["id"]
    await api.client.patch(f"/v1/partners/{pid}", json={"company": "New Name"}, headers=api.bearer(key))
    await api.client.post(
        f"/v1/partners/{pid}/suspend",
        json={"reason": "late payment"},
        headers={**api.admin, "X-Request-ID": "req-42"},
    )
    # Suspended, the partner changes nothing, so nothing more is audited of it.
    refused = await api.client.patch(f"/v1/partners/{pid}", json={"company": "Newer"}, headers=api.bearer(key))
    assert refused.status_code == 403
    await api.client.patch("/v1/program/settings", json={"auto_approve": False}, headers=api.admin)
    await api.issue_key("store", ["store"])

    response = await api.client.get(f"/v1/audit-events?object_type=partner&object_id={pid}", headers=api.admin)
    assert response.status_code == 200
    events = response.json()["items"]
    assert [e["action"] for e in events] == ["partner.suspend", "partner.updated", "partner.registered"]
    suspended, updated, registered = events
    assert registered["actor"] == "public" and registered["after"]["agreement_version"] == "2026-01"
    assert suspended["before"] == {"status": "active"}
    assert suspended["after"] == {"status": "suspended", "reason": "late payment"}
    assert suspended["request_id"] == "req-42" and suspended["actor"].startswith("admin:")
    assert updated["actor"] == f"partner:{pid}"
    assert updated["before"]["company"] != "New Name" and updated["after"]["company"] == "New Name"

    settings = (await api.client.get("/v1/audit-events?action=program_settings.updated", headers=api.admin)).json()
    assert settings["items"][0]["before"] == {"auto_approve": True}
    assert settings["items"][0]["after"] == {"auto_approve": False}
    keys = (await api.client.get("/v1/audit-events?object_type=api_key", headers=api.admin)).json()["items"]
    assert {e["action"] for e in keys} == {"api_key.created"}
    assert all("key_hash" not in (e["after"] or {}) for e in keys)


async def test_audit_log_filters_and_pages(api: Api) -> None:
    for _ in range(3):
        await api.register()
    api.clock.advance(days=1)
    await api.register()
    page = (await api.client.get("/v1/audit-events?action=partner.registered&limit=2", headers=api.admin)).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = (
        await api.client.get(
            f"/v1/audit-events?action=partner.registered&limit=2&cursor={page['next_cursor']}",
            headers=api.admin,
        )
    ).json()
    assert len(rest["items"]) == 2 and rest["next_cursor"] is None
    ids = [e["id"] for e in page["items"] + rest["items"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 4
    recent = (
        await api.client.get("/v1/audit-events?action=partner.registered&since=2026-03-03T00:00:00Z", headers=api.admin)
    ).json()
    assert len(recent["items"]) == 1
    public = (await api.client.get("/v1/audit-events?actor=public", headers=api.admin)).json()["items"]
    assert public and all(e["actor"] == "public" for e in public)


async def test_audit_log_is_admin_read_only(api: Api) -> None:
    _, key = await api.register()
    assert (await api.client.get("/v1/audit-events", headers=api.bearer(key))).status_code == 403
    assert (await api.client.delete("/v1/audit-events", headers=api.admin)).status_code == 405
