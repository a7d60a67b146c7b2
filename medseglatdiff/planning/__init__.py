"""Self-configuration: dataset fingerprint, the planner's rules and plans.json (see docs/planning.md)."""
