// Empty stand-in for drivers/gpu/drm/drm_atomic.c of Linux 6.1.176.
