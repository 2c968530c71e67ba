"""Short business flows through the REST API, shared by the integration tests."""

from __future__ import annotations

from typing import Any

from tests.support.clients import Account, Api


def create_channel(api: Api, owner: Account, price: str = "100.00") -> dict[str, Any]:
    """The owner creates a channel and gets its JSON back."""
    response = api.as_user(owner).post(
        "/api/channels",
        json={
            "name": "Tech news",
            "platform": "telegram",
            "url": "https://t.me/tn",
            "price": price,
        },
    )
    assert response.status_code == 201, response.text
    return response.json()


def create_campaign(
    api: Api, advertiser: Account, channel_id: str, title: str = "Spring sale"
) -> dict[str, Any]:
    """The advertiser requests a placement and gets the campaign JSON back."""
    response = api.as_user(advertiser).post(
        "/api/campaigns",
        json={"channel_id": channel_id, "title": title, "content": "Buy now"},
    )
    assert response.status_code == 201, response.text
    return response.json()


def act(api: Api, who: Account, campaign_id: str, action: str) -> dict[str, Any]:
    """Run a lifecycle action (accept, reject, complete, cancel) that must succeed."""
    response = api.as_user(who).post(f"/api/campaigns/{campaign_id}/{action}")
    assert response.status_code == 200, response.text
    return response.json()
