// Empty stand-in for drivers/gpu/drm/drm_panel_orientation_quirks.c of Linux 6.1.176.
