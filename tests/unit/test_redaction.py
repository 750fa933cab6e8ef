"""Secrets never reach a log line or a stored value: `redact`, `redact_value`, and the logging setup."""

from __future__ import annotations

import io
import logging
import threading
from collections import namedtuple
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot import redaction
from bot.logging_setup import NOISY_LOGGERS, RedactingFilter, RedactingFormatter, configure_logging
from bot.redaction import _PATTERN, MASK, _mask, redact, redact_message, redact_value, remember_secret

SLACK_TOKENS = [
    "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx",
    "xoxp-1234-5678-9012-abcdef0123456789",
    "xoxa-2-abcDEF123",
    "xoxe-1-My0xNjQ1LTU2Nzg5",
    "xoxs-legacy-1234-abcd",
    "xoxr-refresh-99887766",
    "xapp-1-A012ABCD-1234567890-0123456789abcdef",
]
VPS_TOKEN = "vps_9f8e7d6c5b4a3210ZyXw"


@pytest.mark.parametrize("token", [*SLACK_TOKENS, VPS_TOKEN])
def test_each_token_kind_is_masked_inside_longer_text(token: str) -> None:
    text = f"calling chat.postMessage with token={token} for channel C0123 failed"

    result = redact(text)

    assert token not in result
    prefix = token[:5] if token.startswith("x") else "vps_"
    assert result == f"calling chat.postMessage with token={prefix}[redacted] for channel C0123 failed"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abc.def-ghi", "Authorization: [redacted]"),
        (
            "headers {'Authorization': 'Basic dXNlcjpwYXNz'} sent",
            "headers {'Authorization': '[redacted]'} sent",
        ),
        ('{"authorization": "opaque-secret-123"}', '{"authorization": "[redacted]"}'),
        ("Proxy-Authorization=Token 0a1b2c", "Proxy-Authorization=[redacted]"),
        (
            "(b'authorization', b'Bearer eyJhbGciOi.eyJzdWIi.c2lnbmF0dXJl')",
            "(b'authorization', b'Bearer [redacted]')",
        ),
        ("got 401 for bearer zzz-top_secret/+= then retried", "got 401 for bearer [redacted] then retried"),
        ("my token is xoxb-1-2-abc.", "my token is xoxb-[redacted]."),
        ("xoxe.xoxp-1-rotating", "xoxe.xoxp-[redacted]"),
        ("https://x/?token=xoxb-1-2&channel=C1", "https://x/?token=xoxb-[redacted]&channel=C1"),
    ],
)
def test_authorization_and_bearer_values_and_token_edges(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "created snapshot 42 (nightly-2024-05-01) on server web-1 for <@U0123>",
        "vps_ab",
        "vps_1234567",  # 7 characters after the prefix: not a token
        "xoxo and hugs",
        "xox-b",
        "see vps_api_url in the settings",
        "authorization failed for U0123",
        "VPS_API_TOKEN is required for this mode",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


def test_redact_value_walks_nested_structures_without_touching_other_values() -> None:
    Pair = namedtuple("Pair", "name secret")
    original = {
        "operation": "create",
        "count": 3,
        "ok": None,
        "headers": {"Authorization": f"Bearer {VPS_TOKEN}", "retries": [1, 2]},
        "errors": [f"slack said no ({SLACK_TOKENS[0]})", ("nested", [{"deep": SLACK_TOKENS[6]}])],
        "pair": Pair("x", VPS_TOKEN),
        "seen": {SLACK_TOKENS[1]},
        SLACK_TOKENS[2]: "a token used as a key",
    }

    cleaned = redact_value(original)

    assert cleaned == {
        "operation": "create",
        "count": 3,
        "ok": None,
        "headers": {"Authorization": "Bearer [redacted]", "retries": [1, 2]},
        "errors": ["slack said no (xoxb-[redacted])", ("nested", [{"deep": "xapp-[redacted]"}])],
        "pair": Pair("x", "vps_[redacted]"),
        "seen": {"xoxp-[redacted]"},
        "xoxa-[redacted]": "a token used as a key",
    }
    assert type(cleaned["pair"]) is Pair
    assert original["headers"]["Authorization"] == f"Bearer {VPS_TOKEN}"  # the input is not modified


# -- property tests ---------------------------------------------------------------------------------------

_TOKEN_ALPHABET = st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~+/=%")


@st.composite
def tokens(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(["xoxb-", "xoxp-", "xoxa-", "xoxe-", "xoxs-", "xoxr-", "xapp-", "vps_"]))
    minimum = 8 if prefix == "vps_" else 1
    body = draw(st.text(_TOKEN_ALPHABET, min_size=minimum, max_size=60))
    return prefix + body


@given(before=st.text(max_size=40), token=tokens(), after=st.text(max_size=40))
def test_redact_never_returns_the_token(before: str, token: str, after: str) -> None:
    assert token not in redact(before + token + after)


@given(before=st.text(max_size=40), token=tokens(), after=st.text(max_size=40))
def test_redact_value_never_returns_the_token(before: str, token: str, after: str) -> None:
    cleaned = redact_value({"k": [before + token + after, (token,)]})
    assert token not in repr(cleaned)


@given(st.text(max_size=80))
def test_redacting_twice_changes_nothing_more(text: str) -> None:
    once = redact(text)
    assert redact(once) == once


@given(
    st.lists(
        st.one_of(
            st.text(max_size=10),
            st.sampled_from(
                ["xox", "xoxb-", "XOXB-", "xapp-", "vps_", "VPS_", "Bearer ", "bEaReR\t", "authorization:"]
            ),
        ),
        max_size=8,
    ).map("".join)
)
def test_the_fast_path_never_skips_a_match(text: str) -> None:
    # `redact` skips the regex when no marker substring is present; it must agree with always running it.
    assert redact(text) == _PATTERN.sub(_mask, text)


_MESSAGE_TEXT = st.lists(
    st.one_of(
        st.text(max_size=10),
        st.sampled_from(["xoxb-1", "XAPP-", "vps_12345678", "Bearer x", "AUTHORIZATION=y", '"', "\\", "\n", "é", "K"]),
    ),
    max_size=5,
).map("".join)
_MESSAGES = st.recursive(
    st.one_of(_MESSAGE_TEXT, st.integers(), st.booleans(), st.none()),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_MESSAGE_TEXT, inner, max_size=4),
    max_leaves=12,
)


class _Owner:
    """Owns a configured secret for one test: the secret is forgotten when this is collected."""


@given(_MESSAGES)
def test_redact_message_agrees_with_the_full_walk(message: object) -> None:
    # The whole-message pre-check (issue 19 §3) may only skip the walk when the walk would change nothing.
    assert redact_message(message) == redact_value(message)


@pytest.mark.parametrize("secret", ["plainsecret123", 'quo"te-secret-99', "back\\slash-secret", "tab\tsecret-0"])
def test_redact_message_masks_a_configured_secret_even_one_json_escapes(secret: str) -> None:
    owner = _Owner()
    remember_secret(secret, owner)
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": f"value {secret} here"}}]
    assert secret[:8] not in repr(redact_message(blocks))
    clean = [{"type": "section", "text": {"type": "mrkdwn", "text": "nothing to mask"}}]
    assert redact_message(clean) == clean
    del owner


def test_a_secret_forgotten_on_a_thread_holding_the_lock_neither_hangs_it_nor_leaks_meanwhile() -> None:
    """The garbage collector can run a `Secret`'s finalizer inside `remember_secret`'s own update, on the thread
    holding the lock (it hung a test worker for good). Forced here: the owner dies while its thread holds it."""
    secret = "zebra crossing at noon"  # shaped like no credential: only remembering it masks it
    finished = threading.Event()
    masked_while_held: list[str] = []

    def remember_then_drop_the_owner_under_the_lock() -> None:
        owner = _Owner()
        remember_secret(secret, owner)
        with redaction._secrets_lock:
            del owner  # its finalizer runs now, on this thread
            masked_while_held.append(redact(f"x {secret} y"))
        finished.set()

    threading.Thread(target=remember_then_drop_the_owner_under_the_lock, daemon=True).start()
    assert finished.wait(10), "forgetting a secret under the lock hung its thread"
    assert masked_while_held == [f"x {MASK} y"]  # still masked until the lock is free: too much, never too little
    # The next update applies the queued forget. Owned and unlike any word, so it is forgotten again afterwards: an
    # unowned "another secret, later" masked "another " for every later test in the worker (a VPS.org client test
    # reading "another host" in a log line failed after it).
    later = _Owner()
    remember_secret("quokka flute, later", later)
    assert redact(f"x {secret} y") == f"x {secret} y"
    del later
    assert redact("x quokka flute, later y") == "x quokka flute, later y"


# -- logging ----------------------------------------------------------------------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """`configure_logging` changes process-wide state: put it all back for the next test."""
    root = logging.getLogger()
    handlers = list(root.handlers)
    filters = {h: list(h.filters) for h in handlers}
    level = root.level
    noisy = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    yield
    root.handlers[:] = handlers
    for handler, kept in filters.items():
        handler.filters[:] = kept
    root.setLevel(level)
    for name, noisy_level in noisy.items():
        logging.getLogger(name).setLevel(noisy_level)


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A DEBUG logger whose only output is a stream behind a `RedactingFormatter`."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("test_redaction.captured")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)
    logger.propagate = True


def _fail_with(secret: str) -> None:
    raise RuntimeError(f"upstream rejected Authorization: Bearer {secret}")


def test_formatter_masks_args_fstrings_and_dict_args_at_debug(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured

    logger.debug("posting with %s to %s", SLACK_TOKENS[0], "C0123")
    logger.debug(f"vps call headers={{'Authorization': 'Bearer {VPS_TOKEN}'}}")
    logger.debug("%(token)s then %(other)s", {"token": SLACK_TOKENS[6], "other": "fine"})

    lines = stream.getvalue().splitlines()
    assert lines == [
        "DEBUG test_redaction.captured: posting with xoxb-[redacted] to C0123",
        "DEBUG test_redaction.captured: vps call headers={'Authorization': '[redacted]'}",
        "DEBUG test_redaction.captured: xapp-[redacted] then fine",
    ]


def test_formatter_masks_exception_tracebacks_and_stacks(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured

    try:
        _fail_with(VPS_TOKEN)
    except RuntimeError:
        logger.exception("snapshot create failed for token %s", SLACK_TOKENS[1])
    logger.debug("where am I with %s", SLACK_TOKENS[3], stack_info=True)

    output = stream.getvalue()
    assert "Traceback (most recent call last)" in output
    assert "RuntimeError: upstream rejected Authorization: [redacted]" in output
    assert "snapshot create failed for token xoxp-[redacted]" in output
    assert "Stack (most recent call last)" in output
    for secret in [VPS_TOKEN, SLACK_TOKENS[1], SLACK_TOKENS[3]]:
        assert secret not in output


def test_filter_protects_a_handler_with_a_plain_formatter() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("test_redaction.filtered")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        try:
            _fail_with(SLACK_TOKENS[0])
        except RuntimeError:
            logger.debug("token %s failed", VPS_TOKEN, exc_info=True)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True

    output = stream.getvalue()
    assert output.startswith("token vps_[redacted] failed\nTraceback")
    assert "RuntimeError: upstream rejected Authorization: [redacted]" in output
    assert SLACK_TOKENS[0] not in output and VPS_TOKEN not in output


def test_configure_logging_writes_redacted_lines_to_stderr_even_at_debug(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("DEBUG")

    logging.getLogger("httpx").debug("HTTP Request: GET headers Authorization: Bearer %s", VPS_TOKEN)
    logging.getLogger("slack_sdk.test").debug("token %s", SLACK_TOKENS[0])
    try:
        _fail_with(VPS_TOKEN)
    except RuntimeError:
        logging.getLogger("bot.test").exception("boom")

    err = capsys.readouterr().err
    assert "DEBUG httpx: HTTP Request: GET headers Authorization: [redacted]" in err
    assert "DEBUG slack_sdk.test: token xoxb-[redacted]" in err
    assert "ERROR bot.test: boom" in err
    assert "RuntimeError: upstream rejected Authorization: [redacted]" in err
    assert VPS_TOKEN not in err and SLACK_TOKENS[0] not in err


def test_configure_logging_also_covers_handlers_installed_by_others(
    restore_logging: None, caplog: pytest.LogCaptureFixture
) -> None:
    configure_logging("DEBUG")  # caplog's handler is already on the root logger: it gets the filter

    logging.getLogger("bot.vps.client").debug("sending Bearer %s", VPS_TOKEN)

    assert caplog.messages == ["sending Bearer [redacted]"]
    assert VPS_TOKEN not in caplog.text


def test_configure_logging_is_idempotent_and_quiets_noisy_libraries(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()

    configure_logging("INFO")
    configure_logging("INFO")

    ours = [h for h in root.handlers if isinstance(h.formatter, RedactingFormatter)]
    assert len(ours) == 1
    assert root.level == logging.INFO
    for name in NOISY_LOGGERS:
        assert logging.getLogger(name).getEffectiveLevel() == logging.WARNING
    logging.getLogger("httpx").info("HTTP Request: GET https://admin.vps.org/api/v1/snapshots/")
    logging.getLogger("bot").info("started")
    err = capsys.readouterr().err
    assert "HTTP Request" not in err
    assert err.count("INFO bot: started") == 1  # one handler, one line

    configure_logging("debug")
    assert len([h for h in root.handlers if isinstance(h.formatter, RedactingFormatter)]) == 1
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.DEBUG


def test_configure_logging_rejects_an_unknown_level(restore_logging: None) -> None:
    with pytest.raises(ValueError, match="LOUD"):
        configure_logging("LOUD")
