"""Agreement versions, acceptances and the R04 standing of a partner at any past moment."""

from __future__ import annotations

from tests.conftest import Api


async def test_current_agreement_is_public(api: Api) -> None:
    response = await api.client.get("/v1/agreements/current")
    assert response.status_code == 200
    assert response.json()["version"] == "2026-01"
    assert [v["version"] for v in (await api.client.get("/v1/agreements")).json()["items"]] == ["2026-01"]


async def test_publish_new_version_and_partner_accepts(api: Api) -> None:
    partner, key = await api.register()
    published = await api.client.post(
        "/v1/agreements",
        json={"version": "2026-07", "title": "Agreement, July 2026", "accept_by": "2026-04-01T00:00:00Z"},
        headers=api.admin,
    )
    assert published.status_code == 201, published.text
    assert published.json()["published_at"] == "2026-03-02T09:00:00Z"
    assert (await api.client.get("/v1/agreements/current")).json()["version"] == "2026-07"
    # New registrants must accept the new version.
    old = await api.client.post("/v1/partners", json=api.registration(accepted_agreement_version="2026-01"))
    assert old.status_code == 422
    await api.register(accepted_agreement_version="2026-07")

    api.clock.advance(days=3)
    accepted = await api.client.post(
        f"/v1/partners/{partner['id']}/agreement-acceptances",
        json={"version": "2026-07"},
        headers=api.bearer(key),
    )
    assert accepted.status_code == 201 and accepted.json()["accepted_at"] == "2026-03-05T09:00:00Z"
    api.clock.advance(days=1)
    again = await api.client.post(
        f"/v1/partners/{partner['id']}/agreement-acceptances",
        json={"version": "2026-07"},
        headers=api.bearer(key),
    )
    assert again.status_code == 200 and again.json()["accepted_at"] == "2026-03-05T09:00:00Z"
    listed = await api.client.get(f"/v1/partners/{partner['id']}/agreement-acceptances", headers=api.admin)
    assert [a["version"] for a in listed.json()["items"]] == ["2026-01", "2026-07"]


async def test_publishing_is_admin_write_and_checked(api: Api) -> None:
    body = {"version": "2027-01", "title": "T", "accept_by": "2027-02-01T00:00:00Z"}
    _, partner_key = await api.register()
    assert (await api.client.post("/v1/agreements", json=body, headers=api.bearer(partner_key))).status_code == 403
    assert (await api.client.post("/v1/agreements", json=body, headers=api.admin)).status_code == 201
    duplicate = await api.client.post("/v1/agreements", json=body, headers=api.admin)
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "agreement_version_exists"
    past = await api.client.post(
        "/v1/agreements",
        json={**body, "version": "x", "accept_by": "2020-01-01T00:00:00Z"},
        headers=api.admin,
    )
    assert past.status_code == 422 and past.json()["code"] == "accept_by_in_past"


async def test_unknown_version_cannot_be_accepted(api: Api) -> None:
    partner, key = await api.register()
    response = await api.client.post(
        f"/v1/partners/{partner['id']}/agreement-acceptances",
        json={"version": "9999-01"},
        headers=api.bearer(key),
    )
    assert response.status_code == 404 and response.json()["code"] == "agreement_version_not_found"


async def test_only_the_partner_itself_accepts(api: Api) -> None:
    partner, _ = await api.register()
    response = await api.client.post(
        f"/v1/partners/{partner['id']}/agreement-acceptances", json={"version": "2026-01"}, headers=api.admin
    )
    assert response.status_code == 403


async def test_r04_standing_at_past_moments(api: Api) -> None:
    """Active and bound at T is answered from dated history, for any past T."""
    registered_at = api.clock.now()
    partner, key = await api.register()
    pid = partner["id"]
    await api.client.post(
        "/v1/agreements",
        json={"version": "2026-06", "title": "June", "accept_by": "2026-04-01T00:00:00Z"},
        headers=api.admin,
    )
    api.clock.advance(days=10)  # 2026-03-12
    await api.client.post(f"/v1/partners/{pid}/suspend", json={"reason": "audit"}, headers=api.admin)
    api.clock.advance(days=10)  # 2026-03-22
    await api.client.post(f"/v1/partners/{pid}/reinstate", json={"reason": "ok"}, headers=api.admin)
    api.clock.advance(days=30)  # 2026-04-21: past the new version's accept-by date, not accepted

    async def standing(at: str) -> dict[str, object]:
        response = await api.client.get(f"/v1/partners/{pid}/standing", params={"at": at}, headers=api.bearer(key))
        assert response.status_code == 200, response.text
        return dict(response.json())

    before = await standing("2026-03-01T00:00:00Z")
    assert before["status"] is None and before["eligible"] is False
    at_registration = await standing(registered_at.isoformat())
    assert at_registration["status"] == "active" and at_registration["eligible"] is True
    suspended = await standing("2026-03-15T00:00:00Z")
    assert suspended["status"] == "suspended" and suspended["agreement_bound"] is True
    assert suspended["eligible"] is False
    grace = await standing("2026-03-25T00:00:00Z")
    assert grace["eligible"] is True and grace["required_agreement_version"] == "2026-01"
    lapsed = await standing("2026-04-02T00:00:00Z")
    assert lapsed["status"] == "active" and lapsed["agreement_bound"] is False
    assert lapsed["required_agreement_version"] == "2026-06" and lapsed["eligible"] is False
    now = (await api.client.get(f"/v1/partners/{pid}/standing", headers=api.admin)).json()
    assert now["at"] == "2026-04-21T09:00:00Z" and now["eligible"] is False

    await api.client.post(
        f"/v1/partners/{pid}/agreement-acceptances", json={"version": "2026-06"}, headers=api.bearer(key)
    )
    assert (await standing("2026-04-21T09:00:00Z"))["eligible"] is True
    # The past does not change when the partner accepts later.
    assert (await standing("2026-04-02T00:00:00Z"))["eligible"] is False
