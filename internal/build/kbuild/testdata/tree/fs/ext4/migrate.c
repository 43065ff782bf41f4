// Empty stand-in for fs/ext4/migrate.c of Linux 6.1.176.
