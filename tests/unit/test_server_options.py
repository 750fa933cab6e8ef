"""gunicorn's settings for `serve`: worker recycling (max_requests with jitter) is on by default and configurable."""

from __future__ import annotations

import pytest

from bot.config import ConfigError, load_settings
from bot.server import gunicorn_options


def test_workers_are_recycled_with_jitter_by_default() -> None:
    options = gunicorn_options(load_settings({}, dotenv_path=None), workers=2, threads=16)
    assert options["max_requests"] == 10000 and options["max_requests_jitter"] == 1000


def test_recycling_is_configurable_and_zero_turns_it_off() -> None:
    tuned = load_settings({"GUNICORN_MAX_REQUESTS": "500", "GUNICORN_MAX_REQUESTS_JITTER": "50"}, dotenv_path=None)
    assert gunicorn_options(tuned, 2, 16)["max_requests"] == 500
    assert gunicorn_options(tuned, 2, 16)["max_requests_jitter"] == 50
    off = gunicorn_options(load_settings({"GUNICORN_MAX_REQUESTS": "0"}, dotenv_path=None), 2, 16)
    assert off["max_requests"] == 0 and off["max_requests_jitter"] == 0


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GUNICORN_MAX_REQUESTS": "-1"}, "GUNICORN_MAX_REQUESTS is out of range"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT is malformed"),
        ({"METRICS_PORT": "3000"}, "METRICS_PORT is out of range: it must differ from PORT"),
        ({"METRICS_PORT": "http"}, "METRICS_PORT is malformed"),
    ],
)
def test_bad_settings_are_refused_with_the_variable_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env, dotenv_path=None)
