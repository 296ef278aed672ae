"""Plain-words reasons for what went wrong with Instagram, and whether a post may exist.

instagrapi's exceptions are recognised by class name (through their bases), so this module
never imports instagrapi: the error path of a publish that failed before instagrapi was
loaded must not pay for loading it.
"""

from __future__ import annotations

from dataclasses import dataclass

from crosspost_logs import sanitize
from crosspost_orchestrator import CrosspostError

__all__ = ["Failure", "InstagramError", "describe_failure"]

_LOGIN_COMMAND = "`crosspost login instagram`"
_MAX_DETAIL = 160


class InstagramError(CrosspostError):
    """An Instagram publish, check or login failed; the message says why and what to do.

    `outcome_unknown` is true when the post may exist although it was not confirmed.
    """

    def __init__(self, message: str, *, outcome_unknown: bool = False) -> None:
        super().__init__(message)
        self.outcome_unknown = outcome_unknown


@dataclass(frozen=True, slots=True)
class Failure:
    """A one-line reason, and whether the post may exist anyway."""

    message: str
    outcome_unknown: bool = False


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _status(exc: BaseException) -> int | None:
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def _detail(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    line = " ".join(sanitize(str(text)).split())
    return line if len(line) <= _MAX_DETAIL else line[: _MAX_DETAIL - 1] + "…"


def describe_failure(exc: BaseException, username: str, *, configure_sent: bool = False) -> Failure:
    """The reason `exc` gives, in plain words, for the account `username`.

    `configure_sent` says the request that creates the post went out: a failure that is not
    a clear refusal (timeout, dropped connection, server error) then leaves the post's
    existence unknown.
    """
    if isinstance(exc, InstagramError):
        return Failure(str(exc), exc.outcome_unknown)
    names = _names(exc)
    status = _status(exc)
    # Refusals: Instagram answered, and the answer says no post was made.
    if names & {"BadPassword", "BadCredentials"}:
        return Failure(
            f"Instagram refused the password of {username}: check CROSSPOST_INSTAGRAM_PASSWORD "
            f"(or log in once with {_LOGIN_COMMAND})"
        )
    if "TwoFactorRequired" in names:
        return Failure(
            f"Instagram asks for a two-factor code to log in {username}: run {_LOGIN_COMMAND} "
            "to enter it once, then publish again"
        )
    if "AccountSuspended" in names:
        return Failure(f"Instagram reports the account {username} as suspended")
    if "ChallengeError" in names:
        return Failure(
            f"Instagram asks to confirm it is really {username} (challenge required): run "
            f"{_LOGIN_COMMAND} to answer it, or approve the login in the Instagram app, then "
            "publish again"
        )
    if names & {"PleaseWaitFewMinutes", "ClientThrottledError", "RateLimitError"} or status == 429:
        return Failure("Instagram asks to wait; try later (rate limited)")
    if names & {"FeedbackRequired", "SentryBlock"}:
        return Failure(f"Instagram blocked the action for now; try later ({_detail(exc)})")
    if names & {"LoginRequired", "ClientLoginRequired", "ReloginAttemptExceeded"}:
        return Failure(
            f"Instagram ended the session of {username} during the publish; publish again "
            "to log in anew"
        )
    if "PhotoConfigureError" in names:
        return Failure(
            "Instagram took the photo but did not confirm the post; it may exist: check the "
            "profile before publishing again",
            outcome_unknown=True,
        )
    if "PhotoNotUpload" in names:
        shown = f" (HTTP {status})" if status else ""
        return Failure(f"Instagram rejected the photo upload{shown}; try again later")
    # An answer with a reason (a 4xx, or a 2xx whose JSON says "fail") is a refusal too;
    # an answer that is not JSON at all says nothing about the post.
    refused = names & {"UnknownError", "ClientBadRequestError", "ClientStatusFail"} or (
        status is not None
        and status < 500
        and status != 408
        and "ClientError" in names
        and "ClientJSONDecodeError" not in names
    )
    if refused:
        what = "rejected the post" if configure_sent else "refused the request"
        return Failure(f"Instagram {what}: {_detail(exc)}")
    # No clear answer: the post may exist if the request that creates it went out.
    unknown = configure_sent
    maybe = "; the post may exist: check the profile before publishing again" if unknown else ""
    if "DeadlineExceeded" in names:
        return Failure(f"Instagram did not finish within the time limit{maybe}", unknown)
    if names & {"Timeout", "ClientRequestTimeout", "TimeoutError"}:
        return Failure(f"Instagram did not answer in time{maybe}", unknown)
    if names & {"ClientConnectionError", "ConnectionError", "ClientIncompleteReadError"}:
        return Failure(f"could not reach Instagram: the connection failed{maybe}", unknown)
    if status is not None and status >= 500:
        return Failure(f"Instagram had a server error (HTTP {status}){maybe}", unknown)
    if "ClientError" in names:
        return Failure(f"Instagram gave no usable answer: {_detail(exc)}{maybe}", unknown)
    return Failure(
        f"Instagram publish failed: {type(exc).__name__}: {_detail(exc)}{maybe}", unknown
    )
