"""The `[repo]` section: repository controls (pre-commit hook, the `ci` change-control gate)."""

from __future__ import annotations

from dataclasses import dataclass

from phiwarden.policy.reader import Table


@dataclass(frozen=True, slots=True)
class RepoSettings:
    pass


def parse(table: Table) -> RepoSettings:
    table.only(())
    return RepoSettings()
