"""Daily platform statistics: what is counted, on which day, and re-runs that update."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select, update

from core.models import Campaign, PlatformStats
from core.services import stats, withdrawals
from core.services.jobs.runner import run_job
from tests.core.conftest import Database, Factory
from tests.core.jobs_helpers import at, frozen


def _complete_at(make: Factory, when: str, price: int) -> Campaign:
    campaign = make.campaign(status="completed", price=price)
    make.session.execute(
        update(Campaign).where(Campaign.id == campaign.id).values(completed_at=at(when))
    )
    return campaign


def test_a_day_counts_users_channels_campaigns_and_pending_withdrawals(make: Factory):
    make.user("admin")
    owner = make.user("channel_owner", balance=50_000)
    make.channel(owner)
    make.campaign(status="pending")
    make.campaign(status="rejected")
    withdrawals.request_withdrawal(make.session, owner, 12_345)
    withdrawals.request_withdrawal(make.session, owner, 10_000)

    row = stats.compute(make.session, date(2026, 3, 1), at("2026-03-02 00:00"))

    # Each make.campaign() brings its own advertiser and channel (with its owner).
    assert (row["users_admin"], row["users_channel_owner"], row["users_advertiser"]) == (1, 3, 2)
    assert row["channels"] == 3
    assert (row["campaigns_pending"], row["campaigns_rejected"], row["campaigns_accepted"]) == (
        1,
        1,
        0,
    )
    assert (row["withdrawals_pending_count"], row["withdrawals_pending_amount"]) == (2, 22_345)


def test_turnover_and_fees_are_those_of_campaigns_completed_that_day(make: Factory):
    _complete_at(make, "2026-03-01 00:00", 100_000)  # first instant of the day: in
    _complete_at(make, "2026-03-01 23:59:59", 50_001)
    _complete_at(make, "2026-03-02 00:00", 70_000)  # next day: out
    _complete_at(make, "2026-02-28 23:59:59", 90_000)  # day before: out

    row = stats.compute(make.session, date(2026, 3, 1), at("2026-03-02 00:00"))

    assert row["turnover"] == 150_001
    assert row["fees"] == 10_000 + 5_000  # 10 %, rounded half up per campaign
    assert row["campaigns_completed"] == 4


def test_a_rerun_updates_the_day_s_row_and_never_duplicates_it(db: Database, make: Factory):
    make.user("advertiser")
    make.session.commit()
    with db.scope() as session:
        stats.update_day(session, date(2026, 3, 1), at("2026-03-02 00:00"))
    make.user("advertiser")
    make.session.commit()
    with db.scope() as session:
        stats.update_day(session, date(2026, 3, 1), at("2026-03-02 00:05"))

    with db.scope() as session:
        assert session.scalar(select(func.count()).select_from(PlatformStats)) == 1
        row = session.get_one(PlatformStats, date(2026, 3, 1))
        assert row.users_advertiser == 2
        assert row.computed_at == at("2026-03-02 00:05")


def test_the_midnight_run_closes_the_day_that_just_ended(db: Database, settings, make: Factory):
    _complete_at(make, "2026-03-01 12:00", 100_000)
    make.session.commit()

    with frozen("2026-03-02 00:00:01"):
        outcome = run_job("update_platform_stats", scope=db.scope, settings=settings)

    assert outcome.result["day"] == "2026-03-01"
    assert outcome.result["turnover"] == "1000.00"
    with db.scope() as session:
        assert [r.day for r in session.scalars(select(PlatformStats))] == [date(2026, 3, 1)]


def test_a_manual_run_gives_today_so_far(db: Database, settings, make: Factory):
    _complete_at(make, "2026-03-02 09:00", 100_000)
    make.session.commit()

    with frozen("2026-03-02 10:00"):
        outcome = run_job(
            "update_platform_stats", trigger="manual", scope=db.scope, settings=settings
        )

    assert (outcome.result["day"], outcome.result["turnover"]) == ("2026-03-02", "1000.00")


def test_the_api_shape_groups_counts_and_writes_money_as_strings(db: Database):
    with db.scope() as session:
        stats.upsert(
            session,
            {
                **{f"users_{r}": 1 for r in ("advertiser", "channel_owner", "admin")},
                **{
                    f"campaigns_{s}": 2
                    for s in ("pending", "accepted", "rejected", "completed", "cancelled")
                },
                "day": date(2026, 3, 1),
                "channels": 3,
                "turnover": 150_001,
                "fees": 15_000,
                "withdrawals_pending_count": 2,
                "withdrawals_pending_amount": 22_345,
                "computed_at": at("2026-03-02 00:00"),
            },
        )
    with db.scope() as session:
        body = stats.to_dict(session.get_one(PlatformStats, date(2026, 3, 1)))

    assert body["users"] == {"advertiser": 1, "channel_owner": 1, "admin": 1, "total": 3}
    assert body["campaigns"]["cancelled"] == 2
    assert (body["turnover"], body["fees"]) == ("1500.01", "150.00")
    assert body["withdrawals_pending"] == {"count": 2, "amount": "223.45"}
    assert body["computed_at"] == "2026-03-02T00:00:00Z"


def test_series_lists_the_last_n_days_oldest_first(db: Database, make: Factory):
    make.session.commit()
    for day in (date(2026, 2, 27), date(2026, 3, 1), date(2026, 3, 2)):
        with db.scope() as session:
            stats.update_day(session, day, at("2026-03-03 00:00"))

    with db.scope() as session:
        days = [r.day for r in stats.series(session, 3, date(2026, 3, 2))]
        assert days == [date(2026, 3, 1), date(2026, 3, 2)]
        assert stats.latest(session).day == date(2026, 3, 2)
