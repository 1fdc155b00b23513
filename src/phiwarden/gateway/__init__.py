"""The LLM gateway: an OpenAI- and Anthropic-compatible proxy that enforces the policy on every prompt.

A request flows through ordered steps, each a small module with a typed interface:

    shapes (parse) -> inspect (detect, classify) -> decide -> rewrite (transform) -> auditing -> upstream
                                                                                  -> sse / restore_body

`app.create_app(Runtime.build(policy))` is the ASGI application; `server.serve` runs it with uvicorn.
"""
