"""Repository controls: git scanning (staged, ranges, history), the pre-commit hook, `init`,
`doctor` and the `ci` change-control gate.

Every module here talks to git through `phiwarden.repo.git` (the `git` program, never a library),
so behaviour matches what the developer's own git does with their configuration.
"""
