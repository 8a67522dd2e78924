"""``python -m sd_sim_plugin`` is ``sd-sim``."""

from sd_sim_plugin.cli import main

raise SystemExit(main())
