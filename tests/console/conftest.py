"""Fixtures of the console tests."""

from __future__ import annotations

from contextlib import closing
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlmodel import Session, select

from server.campaigns.service import create_campaign
from server.campaigns.tables import Campaign
from server.db import utcnow
from server.flags.tables import Flag
from tests.console import helpers

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def browser():
    """Debian's Chromium, headless, for one test (the tests that use it skip without it)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def county(engine, live_server):
    """Two hospitals after a spot check answered over HTTP: per hospital one absent and one impersonated flag."""
    with Session(engine, expire_on_commit=False) as db:
        world = helpers.build(db)
        create_campaign(db, hospital_ids=world.hospital_ids, deadline_s=600, actor="test")
    server = live_server()
    rng = np.random.default_rng(3)
    for code in world.codes:
        with closing(helpers.pair(server.url, code)) as device:
            assert helpers.answer_once(device, world, rng) == 3
    with Session(engine) as db:
        # The check is over (its deadline passed): hospitals may now see it and answer its flags.
        for campaign in db.exec(select(Campaign)):
            campaign.deadline_at = utcnow() - timedelta(seconds=1)
            db.add(campaign)
        db.commit()
        flags = {(f.hospital_id, f.kind.value): f.id for f in db.exec(select(Flag))}
    assert set(flags) == {(h, k) for h in world.hospital_ids for k in ("absent", "impersonated")}
    return server, world, flags
