// Empty stand-in for drivers/gpu/drm/drm_file.c of Linux 6.1.176.
