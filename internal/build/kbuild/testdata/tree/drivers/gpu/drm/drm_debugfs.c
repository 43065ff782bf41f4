// Empty stand-in for drivers/gpu/drm/drm_debugfs.c of Linux 6.1.176.
