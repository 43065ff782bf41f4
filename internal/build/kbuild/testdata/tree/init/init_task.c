// Empty stand-in for init/init_task.c of Linux 6.1.176.
