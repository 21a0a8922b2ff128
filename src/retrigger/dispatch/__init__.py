"""From decisions to orchestrator runs: runs, connections, the dispatcher and the adapters."""
