// Empty stand-in for lib/kobject_uevent.c of Linux 6.1.176.
