"""phiwarden: keep PHI out of AI coding tools, with audit evidence that survives a HIPAA review.

The library API starts at `phiwarden.detect.scan_text` (findings) and `phiwarden.classify.classify_text`
(tiers); the command line is `phiwarden --help`.
"""

__version__ = "0.1.0"
