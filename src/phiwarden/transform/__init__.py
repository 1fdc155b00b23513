"""Transformations of prompts before they leave: masking, pseudonymization (with a per-conversation
vault and restoration in responses, streamed ones included) and sanitizing PHI-context identifiers."""
