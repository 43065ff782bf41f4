// Empty stand-in for drivers/gpu/drm/drm_ioctl.c of Linux 6.1.176.
