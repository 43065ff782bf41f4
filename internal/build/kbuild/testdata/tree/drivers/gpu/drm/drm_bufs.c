// Empty stand-in for drivers/gpu/drm/drm_bufs.c of Linux 6.1.176.
