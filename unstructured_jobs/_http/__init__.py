"""HTTP: the aiohttp transport and what it uses (proxy, TLS, hooks, logs, tracing, pacing)."""
