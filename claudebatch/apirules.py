"""What each API version and beta accepts: the rules the client checks before sending
and the emulator answers with, kept in one place so the two agree.

Sources (read 2026-12-01, listed with their dates in ``docs/compatibility.md``):
the versioning page and the 2026-10-21 release notes for the version rules, the
batch-processing guide for the extended-output beta, and the official Python
SDK's ``AnthropicBetaParam`` (anthropic 2.15.0) for the beta names.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Dict, FrozenSet, Iterable, List, Mapping, Optional, Set, Tuple

import attrs

# the versions live apart (the CLI's parser needs only them); public here, as always
from ._versions import API_VERSION_2023_06_01 as API_VERSION_2023_06_01
from ._versions import API_VERSION_2026_10_21 as API_VERSION_2026_10_21
from ._versions import API_VERSIONS as API_VERSIONS
from ._versions import DEFAULT_API_VERSION as DEFAULT_API_VERSION
from .catalog import family, packaged_table
from .errors import ConfigurationError

logger = logging.getLogger("claudebatch")

#: Refused under 2026-10-21, even at their default values.
SAMPLING_PARAMS: Tuple[str, ...] = ("temperature", "top_p", "top_k")

#: Beta names the service knows (the official SDK's list, anthropic 2.15.0).
KNOWN_BETAS: FrozenSet[str] = frozenset({
    "computer-use-2024-10-22", "computer-use-2025-01-24", "computer-use-2025-11-24",
    "output-128k-2025-02-19", "output-300k-2026-03-24",
    "mcp-client-2025-04-04", "mcp-client-2025-11-20", "mcp-client-2026-09-15",
    "mcp-tunnels-2026-06-22",
    "dev-full-thinking-2025-05-14", "interleaved-thinking-2025-05-14",
    "code-execution-2025-05-22", "context-1m-2025-08-07", "context-management-2025-06-27",
    "model-context-window-exceeded-2025-08-26", "fast-mode-2026-02-01",
    "user-profiles-2026-03-24", "user-profiles-2026-08-18", "user-profiles-2026-09-04",
    "user-profiles-billing-2026-10-01",
    "advisor-tool-2026-03-01", "managed-agents-2026-04-01", "dreaming-2026-04-21",
    "thinking-token-count-2026-05-13", "server-side-fallback-2026-06-01",
    "server-side-fallback-2026-07-01", "fallback-credit-2026-06-01",
    "fallback-credit-2026-07-01", "agent-memory-2026-07-22",
    "mid-conversation-tool-changes-2026-07-01", "compact-2026-01-12", "compact-2026-09-04",
    "structured-outputs-2025-11-13", "task-budgets-2026-03-13",
    "thinking-display-updates-2026-08-18", "mid-conversation-output-config-2026-07-01",
    "thinking-binding-controls-2026-08-01", "mid-conversation-system-clear-at-2026-08-21",
    "inline-tools-2026-09-15", "ce-plugins-2026-09-01", "spend-limit-reads-2026-09-26",
    "telemetry-destinations-2026-08-11", "webhooks-2026-10-07",
    "admin-user-sign-out-2026-10-08", "message-threads-2026-08-12",
    "analytics-usage-cost-2026-08-24", "experimental-claude-tag-2026-10-21",
    "message-batches-2024-09-24", "prompt-caching-2024-07-31", "pdfs-2024-09-25",
    "token-counting-2024-11-01", "token-efficient-tools-2025-02-19", "files-api-2025-04-14",
    "extended-cache-ttl-2025-04-11", "skills-2025-10-02", "cache-diagnosis-2026-04-07",
    "ce-user-management-2026-07-13", "ce-claude-code-managed-settings-2026-10-06",
    "efs-2026-10-01", "google-managed-data-controls-2026-09-01",
})
_BETA_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")

#: Extended output: ``max_tokens`` up to this, in batches only, for the models the batch
#: guide lists (``Family.extended_output`` in the catalog).
EXTENDED_OUTPUT_BETA = "output-300k-2026-03-24"
EXTENDED_OUTPUT_TOKENS = 300_000

#: Parameters only the beta Messages schema has: the betas that enable each (any one
#: will do), the first being the one the client adds when the user named none.
#: ``None`` first: no single beta to add, the user must choose.
BETA_ONLY_PARAMS: Mapping[str, Tuple[Optional[str], ...]] = {
    "context_management": ("context-management-2025-06-27", "compact-2026-01-12",
                           "compact-2026-09-04"),
    "output_format": ("structured-outputs-2025-11-13",),
    "mcp_servers": (None, "mcp-client-2025-04-04", "mcp-client-2025-11-20",
                    "mcp-client-2026-09-15"),
    "fallbacks": (None, "server-side-fallback-2026-06-01", "server-side-fallback-2026-07-01"),
    "fallback_credit_token": (None, "fallback-credit-2026-06-01", "fallback-credit-2026-07-01"),
}


def check_api_version(version: str, where: str = "api_version") -> str:
    """``version`` if the service knows it, else a ConfigurationError naming the known ones."""
    if version not in API_VERSIONS:
        raise ConfigurationError(
            f"{where} must be one of {', '.join(API_VERSIONS)}, got {version!r}")
    return version


def is_known_model(model: str) -> bool:
    """True for a model id the catalog prices (an id, an alias or a dated snapshot)."""
    return model in packaged_table()


def check_betas(betas: Optional[Iterable[str]], where: str = "betas") -> Tuple[str, ...]:
    """Beta names as given, without repeats, refusing a malformed one.

    A well-formed name this version does not know is let through with a warning: the
    service may know a newer beta than :data:`KNOWN_BETAS`, and it refuses a name it
    does not know at once, at the first create, before anything is made or paid.
    """
    if betas is None:
        return ()
    items: Iterable[Any] = [betas] if isinstance(betas, (str, bytes)) else betas
    given: List[Any] = []
    for item in items:  # "a,b" as the header writes it: one or several names per item
        if isinstance(item, str):
            given.extend(part.strip() for part in item.split(","))
        else:
            given.append(item)
    names: List[str] = []
    for name in given:
        if not isinstance(name, str) or not _BETA_NAME.fullmatch(name):
            raise ConfigurationError(f"{where}: {name!r} is not a beta name "
                                     "(such as 'output-300k-2026-03-24')")
        if name not in KNOWN_BETAS and name not in names:
            logger.warning("claudebatch: %s: %r is not a beta this version knows; the "
                           "service refuses the whole request if it does not know it either "
                           "(see docs/compatibility.md for the known names)", where, name)
        if name not in names:
            names.append(name)
    return tuple(names)


def version_problems(params: Mapping[str, Any], api_version: str) -> List[Tuple[str, str]]:
    """(field, why) for each thing ``api_version`` refuses in these params."""
    if api_version != API_VERSION_2026_10_21:
        return []
    problems = [(name, f"refused under anthropic-version {api_version}, even at its "
                       f"default value: drop it, or send API version {API_VERSION_2023_06_01} "
                       f"(api_version='{API_VERSION_2023_06_01}', "
                       f"--api-version {API_VERSION_2023_06_01})")
                for name in SAMPLING_PARAMS if name in params]
    messages = params.get("messages")
    for i, message in enumerate(messages if isinstance(messages, list) else ()):
        if not isinstance(message, Mapping) or not isinstance(message.get("content"), list):
            continue
        role = message.get("role")
        for j, block in enumerate(message["content"]):
            if not isinstance(block, Mapping):
                continue
            if role == "assistant" and block.get("type") == "document":
                problems.append((f"messages.{i}.content.{j}",
                                 f"a document block in an assistant message is refused under "
                                 f"anthropic-version {api_version}: move it to a user message"))
            if role == "user" and block.get("type") == "text" and block.get("citations"):
                problems.append((f"messages.{i}.content.{j}.citations",
                                 f"citations on a text block in a user message are refused "
                                 f"under anthropic-version {api_version}: drop them"))
    return problems


@attrs.frozen
class RequestNeeds:
    """What one request's params need of the ``anthropic-beta`` header, and what its
    model cannot take."""

    #: Betas to add (the mapping is known and the user named none that would do).
    add: FrozenSet[str] = frozenset()
    #: (field, why) for what no beta can allow, or what needs a beta the user must choose.
    problems: Tuple[Tuple[str, str], ...] = ()


def request_needs(params: Mapping[str, Any], betas: Iterable[str]) -> RequestNeeds:
    """The betas these params need beyond ``betas``, and what cannot be sent at all: a
    ``max_tokens`` over what the model can write, ``inference_geo`` on a model before
    Opus 4.6 / Sonnet 4.6 (the service answers both with an error)."""
    have = set(betas)
    add: Set[str] = set()
    problems: List[Tuple[str, str]] = []
    for name, enabling in BETA_ONLY_PARAMS.items():
        if params.get(name) is None or have.intersection(b for b in enabling if b):
            continue  # null: not given (as the SDKs send an unset optional)
        if enabling[0] is None:
            choices = ", ".join(b for b in enabling if b)
            problems.append((name, f"needs a beta: pass one of {choices} in betas= "
                                   "(--beta)"))
        else:
            add.add(enabling[0])
    max_tokens = params.get("max_tokens")
    model = params.get("model")
    # limits only for models the catalog knows: a new id (claude-opus-4-9) is not held to
    # an older family's limits that merely share its prefix
    found = family(model) if isinstance(model, str) and is_known_model(model) else None
    if found is not None and isinstance(max_tokens, int) and not isinstance(max_tokens, bool) \
            and max_tokens > found.max_output:
        if found.extended_output and max_tokens <= EXTENDED_OUTPUT_TOKENS:
            if EXTENDED_OUTPUT_BETA not in have:
                add.add(EXTENDED_OUTPUT_BETA)
        else:
            most = EXTENDED_OUTPUT_TOKENS if found.extended_output else found.max_output
            extra = (f" ({EXTENDED_OUTPUT_TOKENS:,} with the {EXTENDED_OUTPUT_BETA} beta)"
                     if found.extended_output else "")
            problems.append(("max_tokens", f"{max_tokens:,} is over the {found.max_output:,} "
                                           f"that {model} can write{extra}; at most {most:,}"))
    if found is not None and params.get("inference_geo") is not None \
            and not found.inference_geo:
        problems.append(("inference_geo", f"{model} does not take it (only Claude Opus 4.6, "
                                          "Sonnet 4.6 and later models do): drop it"))
    return RequestNeeds(frozenset(add), tuple(problems))


def output_format(params: Mapping[str, Any]) -> Any:
    """The output format a request asks for, as given: ``output_config.format``, or the
    beta's older ``output_format``; None when it asks for none."""
    config = params.get("output_config")
    found = config.get("format") if isinstance(config, Mapping) else None
    return found if found is not None else params.get("output_format")


def beta_header(betas: Iterable[str]) -> Dict[str, str]:
    """The ``anthropic-beta`` header for these names (none if there are none)."""
    names = sorted(set(betas))
    return {"anthropic-beta": ",".join(names)} if names else {}
