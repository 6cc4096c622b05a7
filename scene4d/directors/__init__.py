"""LoRA directors (DimensionX S-/T-Directors) and per-step director schedules such as Switch-Once."""
