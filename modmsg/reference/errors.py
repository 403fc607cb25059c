"""Error values and their wording (behaviour.md §3 quotes, §6 decisions): what the reference server answers,
before it is rendered."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from modmsg.reference.behaviour import Behaviour

BETA_VALUE = "assistants=v2"
PARSE_ERROR_MESSAGE = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
    "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. "
    "If you have trouble figuring out how to fix this, please contact us through our help center at "
    "help.openai.com.)"
)
MISSING_KEY_MESSAGE = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using "
    "Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if "
    "you're accessing the API from your browser and are prompted for a username and password. You can "
    "obtain an API key from https://platform.openai.com/account/api-keys."
)
MISSING_BETA_MESSAGE = (
    "You must provide the 'OpenAI-Beta' header to access the Assistants API. Please try again by setting "
    "the header 'OpenAI-Beta: assistants=v2'."
)
V1_BETA_MESSAGE = (
    "The v1 Assistants API has been deprecated. Please try again by setting the header "
    "'OpenAI-Beta: assistants=v2'. See the migration guide for more information: "
    "https://platform.openai.com/docs/assistants/migration."
)
INVALID_BETA_MESSAGE = (
    "Invalid 'OpenAI-Beta' header. Please try again by setting the header 'OpenAI-Beta: assistants=v2'."
)
SERVER_ERROR_MESSAGE = "The server had an error while processing your request. Sorry about that!"


@dataclass(frozen=True, kw_only=True)
class ApiError:
    """One error response: status, the four envelope fields and any extra headers."""

    status: int
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


class RequestFailed(Exception):
    """Raised anywhere in request handling to answer with ``error``."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(error.message)
        self.error = error


def bad_request(message: str, *, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(status=400, message=message, param=param, code=code)


def parse_error(behaviour: Behaviour) -> ApiError:
    return ApiError(status=behaviour.invalid_json_status, message=PARSE_ERROR_MESSAGE)


def describe(value: Any) -> str:
    """How OpenAI names a JSON value's type in ``invalid_type`` messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def invalid_type(param: str, expected: str, value: Any) -> ApiError:
    return bad_request(
        f"Invalid type for '{param}': expected {expected}, but got {describe(value)} instead.",
        param=param,
        code="invalid_type",
    )


def invalid_value(param: str, value: str, allowed: Sequence[str]) -> ApiError:
    quoted = [f"'{item}'" for item in allowed]
    listed = " and ".join(quoted) if len(quoted) == 2 else ", ".join(quoted[:-1]) + ", and " + quoted[-1]
    message = f"Invalid value: '{value}'. Supported values are: {listed}."
    return bad_request(message, param=param, code="invalid_value")


def unknown_parameter(param: str) -> ApiError:
    return bad_request(f"Unknown parameter: '{param}'.", param=param, code="unknown_parameter")


def missing_parameter(param: str) -> ApiError:
    message = f"Missing required parameter: '{param}'."
    return bad_request(message, param=param, code="missing_required_parameter")


def too_many_properties(param: str, limit: int, count: int) -> ApiError:
    return bad_request(
        f"Invalid '{param}': too many properties. Expected an object with at most {limit} properties, "
        f"but got an object with {count} properties instead.",
        param=param,
        code="object_above_max_properties",
    )


def thread_not_found(thread_id: str, behaviour: Behaviour) -> ApiError:
    return ApiError(status=behaviour.not_found_status, message=f"No thread found with id '{thread_id}'.")


def message_not_found(message_id: str, behaviour: Behaviour) -> ApiError:
    return ApiError(status=behaviour.not_found_status, message=f"No message found with id '{message_id}'.")


def unknown_url(method: str, path: str) -> ApiError:
    return ApiError(
        status=404,
        message=f"Unknown request URL: {method} {path}. Please check the URL for typos, or see the docs "
        "at https://platform.openai.com/docs/api-reference/.",
        code="unknown_url",
    )


def method_not_allowed(method: str, path: str, allowed: Sequence[str]) -> ApiError:
    listed = ", ".join(allowed)
    return ApiError(
        status=405,
        message=f"Method not allowed: {method} {path}. Supported methods: {listed}.",
        code="method_not_allowed",
        headers=(("Allow", listed),),
    )


def server_error() -> ApiError:
    return ApiError(status=500, message=SERVER_ERROR_MESSAGE, type="server_error")
