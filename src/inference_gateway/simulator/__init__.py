"""A vLLM-faithful model-server simulator: one engine, two front-ends.

- `server.SimulatedServer`: a real-time, vLLM-compatible OpenAI HTTP server.
- `fleet.run_fleet`: N servers in virtual time behind a pluggable scheduler.
See docs/simulator.md.
"""
