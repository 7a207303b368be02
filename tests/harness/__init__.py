"""Shared test helpers (headless Chromium for the HTML report: :mod:`harness.browser`)."""
