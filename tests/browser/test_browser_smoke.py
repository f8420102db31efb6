"""The admin login works in a real browser against the real server."""

from __future__ import annotations

import pytest

from tests.support.browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.live]


def test_staff_signs_in_through_the_admin(browser, live, staff_user):
    page = sign_in(browser, live, "staff", "staff-password")
    assert "Site administration" in page.content()
