"""The per-project daemon: a level-triggered reconcile loop with a control socket."""
