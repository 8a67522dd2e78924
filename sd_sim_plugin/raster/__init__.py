"""BEV rasters of ego-frame scenes for the model (:mod:`.bev`) and pictures for people (:mod:`.render`)."""
