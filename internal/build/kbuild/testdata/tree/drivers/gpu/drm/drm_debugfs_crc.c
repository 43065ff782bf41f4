// Empty stand-in for drivers/gpu/drm/drm_debugfs_crc.c of Linux 6.1.176.
