"""The `[repo]` section: repository controls (pre-commit hook, the `ci` change-control gate, `doctor`).

[repo]
ai_trailers = ["X-AI-Tool"]            # more trailer keys that mark a commit AI-assisted
ai_agents = ["internal-bot"]           # more agent names recognised in Co-authored-by
review_tiers = ["restricted"]          # AI changes to files of these tiers need human review
review_evidence = "any"                # "trailer" (Reviewed-by:), "record" (approval file) or "any"
reviewers = ["alice@example.com"]      # who may review (name or email); empty: any human
review_records = ".phiwarden/reviews"  # folder of approval record files (JSON)
ai_allowed_paths = ["src/**", "tests/**"]  # paths AI-assisted commits may change (empty: all)
ai_max_files = 40                      # most files one AI-assisted commit may change (0: no limit)
fail_on_findings = true                # PHI or secrets in added lines fail `phiwarden ci`
gateway_urls = ["https://phi-gw.internal.example.com"]  # approved phiwarden gateways
mcp_pins = ".phiwarden/mcp-pins.json"  # approved MCP server configurations (doctor)
"""

from __future__ import annotations

from dataclasses import dataclass

from phiwarden.policy.reader import Table

_TIERS = ("public", "internal", "restricted")
_EVIDENCE = ("trailer", "record", "any")
_KEYS = (
    "ai_trailers", "ai_agents", "review_tiers", "review_evidence", "reviewers", "review_records",
    "ai_allowed_paths", "ai_max_files", "fail_on_findings", "gateway_urls", "mcp_pins",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class RepoSettings:
    ai_trailers: tuple[str, ...] = ()
    ai_agents: tuple[str, ...] = ()
    review_tiers: tuple[str, ...] = ("restricted",)
    review_evidence: str = "any"
    reviewers: tuple[str, ...] = ()
    review_records: str = ".phiwarden/reviews"
    ai_allowed_paths: tuple[str, ...] = ()
    ai_max_files: int = 0
    fail_on_findings: bool = True
    gateway_urls: tuple[str, ...] = ()
    mcp_pins: str = ".phiwarden/mcp-pins.json"


def parse(table: Table) -> RepoSettings:
    table.only(_KEYS)
    tiers = table.strings("review_tiers", ("restricted",))
    for index, tier in enumerate(tiers):
        if tier not in _TIERS:
            raise table.document.error(
                (*table.path, "review_tiers", index), f"must be one of {', '.join(_TIERS)}, got {tier!r}"
            )
    for key in ("ai_trailers", "ai_agents"):
        for index, value in enumerate(table.strings(key)):
            if not value.strip() or ":" in value:
                raise table.document.error(
                    (*table.path, key, index), "expected a name without ':' (e.g. \"AI-Assisted\")"
                )
    for index, url in enumerate(table.strings("gateway_urls")):
        if not url.startswith(("http://", "https://")):
            raise table.document.error(
                (*table.path, "gateway_urls", index), f"expected an http(s) URL, got {url!r}"
            )
    return RepoSettings(
        ai_trailers=table.strings("ai_trailers"),
        ai_agents=table.strings("ai_agents"),
        review_tiers=tiers,
        review_evidence=table.choice("review_evidence", "any", _EVIDENCE),
        reviewers=table.strings("reviewers"),
        review_records=table.string("review_records", ".phiwarden/reviews"),
        ai_allowed_paths=table.strings("ai_allowed_paths"),
        ai_max_files=table.integer("ai_max_files", 0, minimum=0, maximum=100_000),
        fail_on_findings=table.boolean("fail_on_findings", True),
        gateway_urls=table.strings("gateway_urls"),
        mcp_pins=table.string("mcp_pins", ".phiwarden/mcp-pins.json"),
    )
