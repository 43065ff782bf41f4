// Empty stand-in for drivers/gpu/drm/drm_aperture.c of Linux 6.1.176.
