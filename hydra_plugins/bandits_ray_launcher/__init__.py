"""A Hydra launcher running each job of a sweep as a Ray task (``hydra/launcher=ray``).

See :mod:`hydra_plugins.bandits_ray_launcher.ray_launcher`. Importing this package is cheap
(Hydra imports every ``hydra_plugins`` module at start-up); Ray is imported when a sweep
launches.
"""
