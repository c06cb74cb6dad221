"""MLflow webhook receiver: signed alias moves in, queued promotions (or repository_dispatch) out.

Entry points: ``server.serve(ReceiverSettings)`` (blocking, for the CLI),
``app.create_app(settings, handler)`` (an ASGI app), ``register.register_webhook``.
Nothing heavy is imported here: uvicorn and prometheus_client load when a receiver starts.
"""
