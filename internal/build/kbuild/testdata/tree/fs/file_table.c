// Empty stand-in for fs/file_table.c of Linux 6.1.176.
