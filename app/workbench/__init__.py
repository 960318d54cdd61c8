"""The stimpute workbench: page state, background jobs and views (no science: see stimpute_core)."""
