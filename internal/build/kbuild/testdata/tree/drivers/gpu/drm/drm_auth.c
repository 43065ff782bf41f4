// Empty stand-in for drivers/gpu/drm/drm_auth.c of Linux 6.1.176.
